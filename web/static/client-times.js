// The client's page: say each time in the device's own zone, in the page's language.
// Without this script the page shows the worker's zone, named; with it, the device's, named.
const lang = document.documentElement.lang || "en";

function deviceZone() {
  try {
    return new Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

// "Thursday 5 March 2026, 09:00" or "jueves 5 de marzo de 2026, 09:00", as the server says it.
function say(instant, zone) {
  const parts = {};
  const format = new Intl.DateTimeFormat(lang === "es" ? "es" : "en-GB", {
    timeZone: zone,
    weekday: "long",
    day: "numeric",
    month: "long",
    year: "numeric",
    hour: "2-digit",
    minute: "2-digit",
    hourCycle: "h23",
  });
  for (const part of format.formatToParts(instant)) parts[part.type] = part.value;
  const time = `${parts.hour}:${parts.minute}`;
  return lang === "es"
    ? `${parts.weekday} ${parts.day} de ${parts.month} de ${parts.year}, ${time}`
    : `${parts.weekday} ${parts.day} ${parts.month} ${parts.year}, ${time}`;
}

function localize() {
  const zone = deviceZone();
  if (!zone) return;
  for (const el of document.querySelectorAll("time[datetime][data-local]")) {
    const instant = new Date(el.getAttribute("datetime"));
    if (Number.isNaN(instant.getTime())) continue;
    el.textContent = say(instant, zone);
  }
  for (const el of document.querySelectorAll("[data-zone]")) el.textContent = `(${zone})`;
  const note = document.getElementById("zone-note");
  if (note && note.dataset.deviceText) note.textContent = note.dataset.deviceText.replace("{zone}", zone);
}

localize();
