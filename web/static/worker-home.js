// The worker's own page: hear at once when a client checks in to a visit.
import { beep } from "./rtc.js";

const banner = document.getElementById("waiting-banner");
let delay = 1000;

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/worker`);
  ws.onopen = () => { delay = 1000; };
  ws.onmessage = (event) => {
    const msg = JSON.parse(event.data);
    if (msg.type !== "waiting") return;
    const link = document.createElement("a");
    link.href = `/visit/${msg.visit_id}`;
    link.textContent = "Open the visit";
    banner.replaceChildren(`${msg.name} is waiting (on a ${msg.device}). `, link);
    banner.hidden = false;
    const row = document.querySelector(`[data-visit-id="${msg.visit_id}"] .visit-status`);
    if (row) row.textContent = "waiting now";
    document.title = `${msg.name} is waiting · Lastmile`;
    beep();
  };
  ws.onclose = () => { setTimeout(connect, delay); delay = Math.min(delay * 2, 30000); };
}
if (banner) connect();
