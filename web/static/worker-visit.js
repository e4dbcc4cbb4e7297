// The worker's call page: live waiting room with admit, the call, the uplink, end visit.
import { VisitSocket, beep, iceConfig, startUplink } from "./rtc.js";

const root = document.getElementById("visit");
const $ = (id) => document.getElementById(id);
const visitId = root.dataset.visitId;
const canAct = root.dataset.canAct === "yes";
const zone = root.dataset.tz || undefined; // times in the worker's zone, like the rest of Lastmile
const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit", timeZone: zone });
let me = null;
let iceServers = [];
let stream = null;
let status = "";
let recording = null;
const peers = new Map(); // client participant id -> RTCPeerConnection
let uplink = null;
const announced = new Set();
window.lastmile = { peers, uplink: () => uplink, state: () => status };

async function media() {
  try {
    stream = await navigator.mediaDevices.getUserMedia({ audio: true, video: { width: 640, height: 480 } });
  } catch {
    try { stream = await navigator.mediaDevices.getUserMedia({ audio: true }); } catch { stream = null; }
  }
  $("self").srcObject = stream;
}

function alertWaiting(p) {
  const el = $("alert");
  el.hidden = false;
  el.textContent = `${p.name} is waiting (since ${clock(p.joined_at)}, on a ${p.device}).`;
  beep();
  document.title = `(${announced.size}) waiting · Lastmile`;
}

function render(state) {
  status = state.visit.status;
  recording = state.visit.recording;
  $("visit-status").textContent = status.replace("_", " ");
  const waiting = state.participants.filter((p) => p.kind === "client" && p.state === "waiting" && p.presence !== "left");
  const list = $("waiting-list");
  list.replaceChildren();
  if (!waiting.length) {
    const li = document.createElement("li");
    li.className = "muted";
    li.textContent = "Nobody is waiting.";
    list.append(li);
    document.title = "Visit · Lastmile";
  }
  for (const p of waiting) {
    if (!announced.has(p.id)) { announced.add(p.id); alertWaiting(p); }
    const li = document.createElement("li");
    li.className = "waiting";
    const since = clock(p.joined_at);
    const consent = p.consent ? "agreed to recording" : "declined recording";
    li.append(`${p.name} · waiting since ${since} · ${p.device} · ${consent}` + (p.presence === "reconnecting" ? " · reconnecting…" : ""));
    if (canAct) {
      const b = document.createElement("button");
      b.type = "button";
      b.textContent = "Admit";
      b.setAttribute("aria-label", `Admit ${p.name}`);
      b.onclick = () => admit(p.id, b);
      li.append(" ", b);
    }
    list.append(li);
  }
  const msgs = $("messages");
  msgs.replaceChildren(...state.messages.map((m) => {
    const li = document.createElement("li");
    li.textContent = `${m.name}: “${m.text}”`;
    return li;
  }));
  $("people").replaceChildren(...state.participants.filter((p) => p.state === "admitted").map((p) => {
    const li = document.createElement("li");
    li.textContent = `${p.name} (${p.kind}): ${p.presence}`;
    return li;
  }));
  const clientAway = state.participants.some((p) => p.kind === "client" && p.state === "admitted" && p.presence === "reconnecting");
  if (clientAway) $("call-status").textContent = "The client is reconnecting…";
  if (status === "in_progress" && recording && canAct && !uplink) restartUplink();
}

function caption(msg) {
  const li = document.createElement("li");
  const m = Math.floor(msg.start / 60), sec = String(Math.floor(msg.start % 60)).padStart(2, "0");
  li.textContent = `${m}:${sec} ${msg.speaker === "worker" ? "You" : "Client"}: ${msg.text}`;
  const list = $("captions");
  list.append(li);
  while (list.children.length > 6) list.firstChild.remove();
}

const risksSeen = new Set();
function riskHeard(msg) {
  const list = $("risk-list");
  const key = `${msg.category}@${msg.start}`;
  if (!list || !canAct || risksSeen.has(key)) return;
  risksSeen.add(key);
  const li = document.createElement("li");
  li.className = "risk";
  const m = Math.floor(msg.start / 60), sec = String(Math.floor(msg.start % 60)).padStart(2, "0");
  li.append(`${msg.label} (at ${m}:${sec}): “${msg.quote}” `);
  const yes = document.createElement("button");
  yes.type = "button";
  yes.textContent = "Confirm";
  yes.setAttribute("aria-label", `Confirm risk: ${msg.label}`);
  const no = document.createElement("button");
  no.type = "button";
  no.className = "secondary";
  no.textContent = "Not a risk";
  no.onclick = () => { li.remove(); if (!list.children.length) $("risks").hidden = true; };
  yes.onclick = async () => {
    yes.disabled = no.disabled = true;
    const resp = await fetch(`/api/visits/${visitId}/risk-flags`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ category: msg.category, quote: msg.quote, start: msg.start }),
    });
    if (resp.ok) {
      li.replaceChildren(`${msg.label}: confirmed. Your supervisor has been told; it is in the note.`);
      li.className = "risk confirmed";
    } else {
      yes.disabled = no.disabled = false;
      const body = await resp.json().catch(() => ({}));
      li.append(` ${body.detail || "Could not confirm; try again."}`);
    }
  };
  li.append(yes, " ", no);
  list.append(li);
  $("risks").hidden = false;
}

async function admit(participantId, button) {
  button.disabled = true;
  const resp = await fetch(`/api/visits/${visitId}/admit`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ participant_id: participantId }),
  });
  if (!resp.ok) {
    button.disabled = false;
    const body = await resp.json().catch(() => ({}));
    $("alert").hidden = false;
    $("alert").textContent = body.detail || "Could not admit.";
  } else {
    $("alert").hidden = true;
  }
}

async function call(clientId) {
  const old = peers.get(clientId);
  if (old) old.close();
  const pc = new RTCPeerConnection(iceConfig(iceServers));
  peers.set(clientId, pc);
  if (stream) for (const track of stream.getTracks()) pc.addTrack(track, stream);
  pc.ontrack = (e) => { $("remote").srcObject = e.streams[0]; };
  pc.onicecandidate = (e) => { if (e.candidate) socket.send({ type: "signal", to: clientId, data: { candidate: e.candidate.toJSON() } }); };
  pc.onconnectionstatechange = () => {
    if (pc.connectionState === "connected") $("call-status").textContent = "Connected.";
    if (pc.connectionState === "failed") $("call-status").textContent = "Connection lost; waiting for the client to reconnect…";
  };
  await pc.setLocalDescription(await pc.createOffer());
  socket.send({ type: "signal", to: clientId, data: { sdp: pc.localDescription.toJSON() } });
}

async function restartUplink() {
  if (uplink) uplink.close();
  uplink = { connectionState: "connecting", close() {} }; // placeholder: one attempt at a time
  try {
    uplink = await startUplink(visitId, stream, iceServers);
    uplink.onconnectionstatechange = () => {
      if (uplink && uplink.connectionState === "failed") { uplink = null; setTimeout(restartUplink, 500); }
    };
  } catch (err) {
    console.warn("uplink:", err.message);
    uplink = null;
  }
}

async function onMessage(msg) {
  if (msg.type === "welcome") { me = msg.participant_id; iceServers = msg.ice_servers; }
  else if (msg.type === "state") render(msg);
  else if (msg.type === "ready") await call(msg.from);
  else if (msg.type === "caption") caption(msg);
  else if (msg.type === "risk") riskHeard(msg);
  else if (msg.type === "signal") {
    const pc = peers.get(msg.from);
    if (!pc) return;
    if (msg.data.sdp) await pc.setRemoteDescription(msg.data.sdp);
    else if (msg.data.candidate) { try { await pc.addIceCandidate(msg.data.candidate); } catch { /* stale */ } }
  } else if (msg.type === "ended") {
    for (const pc of peers.values()) pc.close();
    if (uplink) uplink.close();
    if (stream) for (const t of stream.getTracks()) t.stop();
    $("visit-status").textContent = "ended";
    $("call-status").textContent = `The visit has ended (${msg.reason}).`;
    status = "ended";
    const b = $("end-visit");
    if (b) b.disabled = true;
  }
}

const endButton = $("end-visit");
if (endButton) endButton.addEventListener("click", async () => {
  if (!confirm("End this visit for everyone?")) return;
  endButton.disabled = true;
  const resp = await fetch(`/api/visits/${visitId}/end`, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ reason: "ended by the worker" }),
  });
  if (!resp.ok) endButton.disabled = false;
});

await media();
const socket = new VisitSocket(visitId, {
  onMessage,
  onStatus: (s) => { if (s === "reconnecting") $("call-status").textContent = "Reconnecting to the server…"; },
});
