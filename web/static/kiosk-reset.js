// A kiosk page that only says something: back to the start after a while, keeping nothing.
setTimeout(() => location.replace("/kiosk"), 20000);
