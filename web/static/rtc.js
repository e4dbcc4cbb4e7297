// Shared WebRTC and socket helpers for the client and worker call pages.

export function iceConfig(servers) {
  return { iceServers: servers || [] };
}

// aiortc has no trickle ICE: gather first (bounded), then send the whole offer.
export function waitForIce(pc, ms = 3000) {
  if (pc.iceGatheringState === "complete") return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => { pc.removeEventListener("icegatheringstatechange", check); clearTimeout(timer); resolve(); };
    const check = () => { if (pc.iceGatheringState === "complete") done(); };
    const timer = setTimeout(done, ms);
    pc.addEventListener("icegatheringstatechange", check);
  });
}

// An audio-only uplink of one's microphone to the server, for the transcript.
export async function startUplink(visitId, stream, servers, headers = {}) {
  const track = stream && stream.getAudioTracks()[0];
  if (!track) return null;
  const pc = new RTCPeerConnection(iceConfig(servers));
  pc.addTransceiver(track.clone(), { direction: "sendonly" });
  await pc.setLocalDescription(await pc.createOffer());
  await waitForIce(pc);
  const resp = await fetch(`/api/visits/${visitId}/uplink`, {
    method: "POST",
    headers: { "Content-Type": "application/json", ...headers },
    body: JSON.stringify({ type: "offer", sdp: pc.localDescription.sdp }),
  });
  if (!resp.ok) {
    pc.close();
    const problem = await resp.json().catch(() => ({}));
    throw new Error(problem.detail || `uplink refused (${resp.status})`);
  }
  await pc.setRemoteDescription(await resp.json());
  return pc;
}

// A visit socket that reconnects by itself (backoff 0.5 s to 5 s) until closed on purpose.
export class VisitSocket {
  constructor(visitId, { hello, onMessage, onStatus }) {
    this.visitId = visitId;
    this.hello = hello;
    this.onMessage = onMessage;
    this.onStatus = onStatus || (() => {});
    this.delay = 500;
    this.stopped = false;
    this.connect();
    window.addEventListener("online", () => { if (!this.open()) this.connect(); });
  }
  open() { return this.ws && this.ws.readyState === WebSocket.OPEN; }
  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/visits/${this.visitId}`);
    this.ws = ws;
    ws.onopen = () => {
      this.delay = 500;
      if (this.hello) ws.send(JSON.stringify(this.hello()));
      this.onStatus("open");
    };
    ws.onmessage = (event) => {
      let msg;
      try { msg = JSON.parse(event.data); } catch { return; }
      if (msg.type === "ended") this.stopped = true;
      this.onMessage(msg);
    };
    ws.onclose = (event) => {
      if (this.ws !== ws) return;
      if (event.code === 4403 || event.code === 4000) this.stopped = true;
      if (this.stopped) { this.onStatus("closed"); return; }
      this.onStatus("reconnecting");
      setTimeout(() => this.connect(), this.delay);
      this.delay = Math.min(this.delay * 2, 5000);
    };
  }
  send(msg) { if (this.open()) this.ws.send(JSON.stringify(msg)); }
  stop() { this.stopped = true; if (this.ws) this.ws.close(); }
}

export function beep(frequency = 880, ms = 250) {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    gain.gain.value = 0.15;
    osc.frequency.value = frequency;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    setTimeout(() => { osc.stop(); ctx.close(); }, ms);
  } catch { /* no audio output: the visible alert still shows */ }
}

export function deviceKind() {
  if (document.getElementById("join")?.dataset.kiosk === "yes") return "kiosk";
  const ua = navigator.userAgent;
  if (/iPad|Tablet/i.test(ua)) return "tablet";
  if (/Mobi|Android|iPhone/i.test(ua)) return "phone";
  return "computer";
}
