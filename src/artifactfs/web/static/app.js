// artifactfs web view: the only script. Pans and zooms graphs, and keeps
// the page of a running run up to date. Everything else is plain HTML.
"use strict";

function panZoom(box) {
  const svg = box.querySelector("svg");
  const start = svg.getAttribute("viewBox").split(" ").map(Number);
  let view = start.slice(), drag = null, moved = false;
  const show = () => svg.setAttribute("viewBox", view.map((n) => n.toFixed(1)).join(" "));
  const zoom = (factor, cx, cy) => {
    const w = Math.min(Math.max(view[2] * factor, start[2] / 20), start[2] * 6);
    const f = w / view[2];
    view = [cx - (cx - view[0]) * f, cy - (cy - view[1]) * f, view[2] * f, view[3] * f];
    show();
  };
  const toGraph = (event) => {
    const r = svg.getBoundingClientRect();
    const scale = Math.max(view[2] / r.width, view[3] / r.height);
    return [view[0] + (event.clientX - r.left) * scale, view[1] + (event.clientY - r.top) * scale, scale];
  };
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    const [x, y] = toGraph(e);
    zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, x, y);
  }, { passive: false });
  svg.addEventListener("pointerdown", (e) => {
    drag = { x: e.clientX, y: e.clientY, view: view.slice(), scale: toGraph(e)[2] };
    moved = false;
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
    if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!moved) { svg.setPointerCapture(e.pointerId); svg.classList.add("dragging"); }
    moved = true;
    view = [drag.view[0] - dx * drag.scale, drag.view[1] - dy * drag.scale, view[2], view[3]];
    show();
  });
  const stop = () => { drag = null; svg.classList.remove("dragging"); };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);
  // A drag that ends on a node is not a click on it.
  svg.addEventListener("click", (e) => { if (moved) { e.preventDefault(); moved = false; } }, true);
  svg.addEventListener("dblclick", () => { view = start.slice(); show(); });
  box.querySelectorAll("[data-zoom]").forEach((button) => button.addEventListener("click", () => {
    const how = button.dataset.zoom;
    if (how === "fit") { view = start.slice(); show(); return; }
    zoom(how === "in" ? 1 / 1.25 : 1.25, view[0] + view[2] / 2, view[1] + view[3] / 2);
  }));
}

// A running run: poll its small progress document; when it changes, fetch
// this page again and swap in its live part. Stops once the run has ended.
function followRun(live) {
  let last = null;
  const poll = async () => {
    let progress;
    try {
      const answer = await fetch(live.dataset.live, { headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error(answer.status);
      progress = await answer.text();
    } catch (error) {
      setTimeout(poll, 5000);
      return;
    }
    const ended = JSON.parse(progress).status !== "running";
    if (last === null ? ended : progress !== last) {
      const page = await fetch(window.location.href).then((r) => r.text());
      const fresh = new DOMParser().parseFromString(page, "text/html").getElementById("live");
      if (fresh) {
        live.replaceChildren(...fresh.childNodes);
        live.querySelectorAll("[data-pan]").forEach(panZoom);
      }
    }
    last = progress;
    if (!ended) setTimeout(poll, 1500);
  };
  poll();
}

document.querySelectorAll("[data-pan]").forEach(panZoom);
const live = document.querySelector("[data-live]");
if (live) followRun(live);
