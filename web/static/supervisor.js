// The supervisor's page: risk alerts and the team's visits, live.
// The socket only says what changed; the page fetches itself again and swaps the two sections,
// so what is shown is always what the server renders (and works the same without this script).
import { beep } from "./rtc.js";

const banner = document.getElementById("live-banner");
const SECTIONS = ["alerts", "live"];
let delay = 1000;
let known = new Set(idsOf(document));

function idsOf(doc) {
  const raw = doc.getElementById("alerts")?.dataset.alertIds || "";
  return raw ? raw.split(",") : [];
}

async function refresh() {
  let html;
  try {
    const resp = await fetch(location.pathname, { credentials: "same-origin", headers: { Accept: "text/html" } });
    if (!resp.ok) return;
    html = await resp.text();
  } catch {
    return; // offline for a moment: the next nudge or the timer tries again
  }
  const doc = new DOMParser().parseFromString(html, "text/html");
  for (const id of SECTIONS) {
    const fresh = doc.getElementById(id);
    const here = document.getElementById(id);
    if (fresh && here) here.replaceWith(document.importNode(fresh, true));
  }
  const ids = idsOf(doc);
  const added = ids.filter((id) => !known.has(id));
  known = new Set(ids);
  if (added.length) {
    const first = document.querySelector("#alerts .alert-card h3");
    banner.textContent = `New risk alert: ${first ? first.textContent : ""}`;
    banner.hidden = false;
    document.title = `Risk alert · Lastmile`;
    beep(660, 400);
  }
}

// Many nudges in a burst (a client reconnecting, say) make one fetch.
let pending = null;
function soon() {
  if (pending) return;
  pending = setTimeout(() => { pending = null; refresh(); }, 400);
}

function connect() {
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const ws = new WebSocket(`${scheme}://${location.host}/ws/supervisor`);
  ws.onopen = () => { delay = 1000; refresh(); };
  ws.onmessage = () => soon();
  ws.onclose = () => { setTimeout(connect, delay); delay = Math.min(delay * 2, 30000); };
}

if (banner) {
  connect();
  setInterval(refresh, 30000);
}
