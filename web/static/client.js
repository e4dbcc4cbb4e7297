// The client's side of a visit: device check, consent, waiting room, call, recovery.
import { VisitSocket, beep, deviceKind, iceConfig, startUplink } from "./rtc.js";

const root = document.getElementById("join");
const $ = (id) => document.getElementById(id);
const kiosk = root.dataset.kiosk === "yes";
let joinToken = root.dataset.joinToken || "";
let visitId = root.dataset.visitId || "";
let workerName = root.dataset.worker || "your caseworker";
let stream = null;
let participant = null; // {participant_id, participant_token, recording, ice_servers}
let socket = null;
let pc = null; // to the worker's browser
let uplink = null; // to the server
let workerId = null;
// Read by the browser tests (and handy in the console): the live connections.
window.lastmile = { state: "checking", pc: () => pc, uplink: () => uplink, socket: () => socket };

function show(id) {
  for (const s of ["check", "consent", "waiting", "call", "ended"]) $(s).hidden = !id.includes(s);
  // A kiosk walk-in's name and the way back belong to the join step only.
  for (const s of ["walkin-who", "kiosk-back"]) if ($(s)) $(s).hidden = !id.includes("consent");
  window.lastmile.state = id.join(",");
}

async function deviceCheck() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
    $("preview").srcObject = stream;
    $("check-camera").textContent = "Camera: working";
    meter(stream);
  } catch (err) {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ audio: true });
      $("check-camera").textContent = "Camera: not available (you can still talk)";
      meter(stream);
    } catch {
      $("check-camera").textContent = "Camera and microphone: not available. Allow them in your browser, or join to listen.";
      $("check-mic").textContent = "Microphone: not available";
    }
  }
  const t0 = performance.now();
  try {
    const r = await fetch("/healthz", { cache: "no-store" });
    const ms = Math.round(performance.now() - t0);
    $("check-net").textContent = r.ok ? `Connection: good (${ms} ms to the office)` : "Connection: the office server has a problem";
  } catch {
    $("check-net").textContent = "Connection: cannot reach the office. Check your internet.";
  }
}

function meter(s) {
  if (!s.getAudioTracks().length) return;
  const ctx = new AudioContext();
  const analyser = ctx.createAnalyser();
  ctx.createMediaStreamSource(s).connect(analyser);
  const data = new Uint8Array(analyser.fftSize);
  let heard = false;
  const tick = () => {
    analyser.getByteTimeDomainData(data);
    let peak = 0;
    for (const v of data) peak = Math.max(peak, Math.abs(v - 128) / 128);
    $("mic-level").value = peak;
    if (peak > 0.05 && !heard) { heard = true; $("check-mic").firstChild.textContent = "Microphone: hearing you "; }
    if (!$("check").hidden) requestAnimationFrame(tick);
  };
  $("check-mic").firstChild.textContent = "Microphone: say something… ";
  tick();
}

async function join(event) {
  event.preventDefault();
  $("join-button").disabled = true;
  const walkin = root.dataset.walkinToken;
  const walkinWorker = root.dataset.walkinWorker; // a walk-in queue picked at a kiosk
  const key = `lastmile:pt:${visitId}`;
  const saved = kiosk || walkin ? null : sessionStorage.getItem(key);
  const consent = $("consent-box").checked;
  const resp = walkinWorker
    ? await fetch("/api/kiosk/walk-in", {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({
          worker_id: Number(walkinWorker),
          name: $("walkin-name").value,
          phone: $("walkin-phone").value || null,
          consent,
        }),
      })
    : walkin
    ? await fetch(`/api/walk-in/${walkin}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ name: $("walkin-name").value, phone: $("walkin-phone").value || null, consent, device: deviceKind() }),
      })
    : await fetch(`/api/join/${joinToken}`, {
        method: "POST",
        headers: { "Content-Type": "application/json" },
        body: JSON.stringify({ consent, device: deviceKind(), participant_token: saved }),
      });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) {
    // The queue closed (or went) while the client got ready: the page says so plainly.
    if (walkinWorker && (resp.status === 404 || resp.status === 409)) return location.replace(location.pathname);
    $("join-button").disabled = false;
    if ($("join-error")) {
      $("join-error").hidden = false;
      $("join-error").textContent = body.detail || "Could not join. Ask at the front desk.";
    } else alert(body.detail || "Could not join");
    return;
  }
  if ($("join-error")) $("join-error").hidden = true;
  if (kiosk && $("walkin-name")) $("walkin-name").value = $("walkin-phone").value = ""; // keep no names
  participant = body;
  visitId = String(body.visit_id);
  if (!kiosk) sessionStorage.setItem(`lastmile:pt:${visitId}`, body.participant_token);
  $("recording-note").textContent = body.recording
    ? "This visit is recorded and transcribed, as you agreed."
    : "This visit is not recorded.";
  show(["waiting"]);
  socket = new VisitSocket(visitId, {
    hello: () => ({ type: "hello", token: participant.participant_token }),
    onMessage,
    onStatus,
  });
}

function onStatus(status) {
  if (status === "reconnecting") $("call-status").textContent = "Reconnecting…";
  if (status === "open" && inCall) {
    // Back after a drop: same participant, no new check-in; rebuild the media.
    $("call-status").textContent = `Connecting to ${workerName}…`;
    resume();
  }
}

async function onMessage(msg) {
  if (msg.type === "state") {
    workerId = msg.workers && msg.workers.length ? msg.workers[0] : null;
    if (msg.admitted) { if (!inCall) await enterCall(); return; }
    $("waiting-status").textContent = msg.worker_present
      ? `${msg.worker_name} has been told you are here and will let you in soon.`
      : `${msg.worker_name} will see that you are waiting as soon as they open your visit.`;
  } else if (msg.type === "admitted") {
    beep(660);
    if (!inCall) await enterCall();
  } else if (msg.type === "signal") {
    await onSignal(msg.from, msg.data);
  } else if (msg.type === "caption") {
    const li = document.createElement("li");
    li.textContent = `${msg.speaker === "client" ? "You" : workerName}: ${msg.text}`;
    $("captions").append(li);
    while ($("captions").children.length > 4) $("captions").firstChild.remove();
  } else if (msg.type === "ended") {
    end();
  } else if (msg.type === "error") {
    console.warn("visit:", msg.detail);
  }
}

let inCall = false;
async function enterCall() {
  inCall = true;
  show(["call"]);
  $("self").srcObject = stream;
  $("call-status").textContent = `Connecting to ${workerName}…`;
  await resume();
}

// Ask the worker's browser for a fresh connection, and rebuild the uplink if it is down.
async function resume() {
  socket.send({ type: "ready" });
  if (participant.recording && !uplinkStarting && (!uplink || uplink.connectionState !== "connected")) {
    await restartUplink();
  }
}

let uplinkStarting = false;
async function restartUplink() {
  if (uplinkStarting) return;
  uplinkStarting = true;
  if (uplink) uplink.close();
  uplink = null;
  try {
    uplink = await startUplink(visitId, stream, participant.ice_servers, { "X-Participant-Token": participant.participant_token });
    const mine = uplink;
    uplink.onconnectionstatechange = () => {
      if (uplink === mine && mine.connectionState === "failed") setTimeout(restartUplink, 500);
    };
  } catch (err) {
    console.warn("uplink:", err.message);
    setTimeout(restartUplink, 2000);
  } finally {
    uplinkStarting = false;
  }
}

async function onSignal(from, data) {
  if (data.sdp && data.sdp.type === "offer") {
    if (pc) pc.close();
    pc = new RTCPeerConnection(iceConfig(participant.ice_servers));
    window.lastmile.pcState = "new";
    if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
    pc.ontrack = (e) => { $("remote").srcObject = e.streams[0]; };
    pc.onicecandidate = (e) => { if (e.candidate) socket.send({ type: "signal", to: from, data: { candidate: e.candidate.toJSON() } }); };
    pc.onconnectionstatechange = () => {
      window.lastmile.pcState = pc.connectionState;
      if (pc.connectionState === "connected") $("call-status").textContent = `Connected to ${workerName}.`;
      if (pc.connectionState === "failed" || pc.connectionState === "disconnected") {
        $("call-status").textContent = "Reconnecting…";
        const stale = pc;
        setTimeout(() => { if (pc === stale && pc.connectionState !== "connected") resume(); }, 1500);
      }
    };
    await pc.setRemoteDescription(data.sdp);
    await pc.setLocalDescription(await pc.createAnswer());
    socket.send({ type: "signal", to: from, data: { sdp: pc.localDescription.toJSON() } });
  } else if (data.candidate && pc) {
    try { await pc.addIceCandidate(data.candidate); } catch { /* stale candidate after a rebuild */ }
  }
}

function end() {
  if (pc) pc.close();
  if (uplink) uplink.close();
  if (stream) for (const t of stream.getTracks()) t.stop();
  if (socket) socket.stop();
  pc = uplink = null;
  show(["ended"]);
  if (!kiosk) sessionStorage.removeItem(`lastmile:pt:${visitId}`);
  if (kiosk) setTimeout(() => location.replace("/kiosk"), 10000); // a kiosk keeps nothing
}

$("message-form").addEventListener("submit", (e) => {
  e.preventDefault();
  const text = $("message-text").value.trim();
  if (!text || !socket) return;
  socket.send({ type: "message", text });
  $("message-text").value = "";
  $("message-sent").textContent = "Message sent.";
});
$("test-sound").addEventListener("click", () => beep(523, 600));

// A kiosk left alone before anyone joined goes back to its start (and lists the queues open then),
// so a half-typed code or name never waits for the next person; nor does a page from history.
const KIOSK_IDLE_MS = 120_000;
if (kiosk) {
  let idle = null;
  const poke = () => {
    clearTimeout(idle);
    idle = setTimeout(() => { if (!participant) location.replace("/kiosk"); }, KIOSK_IDLE_MS);
  };
  for (const ev of ["pointerdown", "keydown", "input"]) addEventListener(ev, poke, true);
  poke();
  addEventListener("pageshow", (e) => { if (e.persisted) location.replace("/kiosk"); });
}
$("join-form").addEventListener("submit", join);

if (kiosk && $("code-form")) {
  $("code-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const resp = await fetch("/api/kiosk/check-in", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ code: $("code").value.trim() }),
    });
    const body = await resp.json();
    if (!resp.ok) {
      $("code-error").hidden = false;
      $("code-error").textContent = body.detail || "That code did not work.";
      return;
    }
    joinToken = body.join_token;
    workerName = body.worker_name;
    $("code-entry").hidden = true;
    $("kiosk-visit").hidden = false;
    $("kiosk-with").textContent = `Your visit with ${body.worker_name}`;
    show(["check", "consent"]);
    deviceCheck();
  });
} else {
  show(["check", "consent"]);
  deviceCheck();
}
