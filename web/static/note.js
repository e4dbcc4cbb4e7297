// Click a transcript line (or a quote) to hear that moment of the speaker's own recording.
const list = document.querySelector(".transcript");
const player = document.getElementById("player");
let lines = null;

async function load() {
  if (lines) return lines;
  const resp = await fetch(`/api/visits/${list.dataset.visitId}/transcript`);
  lines = resp.ok ? await resp.json() : [];
  return lines;
}

async function play(at) {
  const found = (await load()).find((l) => Math.abs(l.start - at) < 0.01) || (await load()).find((l) => l.start >= at);
  if (!found || !found.audio_url) return;
  if (player.dataset.src !== found.audio_url) {
    player.src = found.audio_url;
    player.dataset.src = found.audio_url;
  }
  player.currentTime = found.audio_at;
  player.play().catch(() => {});
}

if (list && player) {
  document.addEventListener("click", (event) => {
    const el = event.target.closest("[data-at]");
    if (!el) return;
    event.preventDefault();
    play(Number(el.dataset.at));
  });
}
