// artifactfs web view: the only script. Pans and zooms graphs, and keeps
// the page of a running run up to date. Everything else is plain HTML.
"use strict";

// The view is a viewBox of the same shape as the picture on screen, so one
// number (graph units per screen pixel) maps the pointer exactly: a drag
// moves the graph with the pointer, a zoom keeps the point under it still.
// "fit" shows the whole graph; a graph too big to read when fitted opens at
// reading size on its start (top), and zoom goes from the whole graph to 4x.
function panZoom(box) {
  const svg = box.querySelector("svg");
  const [gx, gy, gw, gh] = svg.getAttribute("viewBox").split(" ").map(Number);
  let x = gx, y = gy, s = 1, drag = null, moved = false;  // s: graph units per screen pixel
  const screen = () => {
    const r = svg.getBoundingClientRect();
    return [Math.max(r.width, 1), Math.max(r.height, 1), r];
  };
  const fitScale = () => { const [w, h] = screen(); return Math.max(gw / w, gh / h, 1 / 4); };
  const show = () => {
    const [w, h] = screen();
    svg.setAttribute("viewBox", [x, y, w * s, h * s].map((n) => n.toFixed(1)).join(" "));
    box.dataset.scale = (1 / s).toFixed(3);  // screen pixels per graph unit, for tests and styles
  };
  const fit = () => { s = fitScale(); x = gx + (gw - screen()[0] * s) / 2; y = gy; show(); };
  const start = () => {
    if (fitScale() <= 2) { fit(); return; }  // readable enough when fitted
    s = 1; y = gy;  // reading size, at the top, around the middle of the first screens' width
    x = gx + Math.max(0, (Math.min(gw, screen()[0] * 4) - screen()[0]) / 2);
    show();
  };
  const zoom = (factor, cx, cy) => {
    const next = Math.min(Math.max(s * factor, 1 / 4), Math.max(fitScale() * 1.5, 1));
    x = cx - (cx - x) * next / s; y = cy - (cy - y) * next / s; s = next;
    show();
  };
  const toGraph = (event) => {
    const r = screen()[2];
    return [x + (event.clientX - r.left) * s, y + (event.clientY - r.top) * s];
  };
  svg.setAttribute("preserveAspectRatio", "xMinYMin meet");
  start();
  new ResizeObserver(show).observe(svg);
  svg.addEventListener("wheel", (e) => {
    e.preventDefault();
    zoom(e.deltaY > 0 ? 1.15 : 1 / 1.15, ...toGraph(e));
  }, { passive: false });
  svg.addEventListener("pointerdown", (e) => {
    drag = { px: e.clientX, py: e.clientY, x, y };
    moved = false;
  });
  svg.addEventListener("pointermove", (e) => {
    if (!drag) return;
    const dx = e.clientX - drag.px, dy = e.clientY - drag.py;
    if (!moved && Math.abs(dx) + Math.abs(dy) < 4) return;
    if (!moved) { svg.setPointerCapture(e.pointerId); svg.classList.add("dragging"); }
    moved = true;
    x = drag.x - dx * s; y = drag.y - dy * s;
    show();
  });
  const stop = () => { drag = null; svg.classList.remove("dragging"); };
  svg.addEventListener("pointerup", stop);
  svg.addEventListener("pointercancel", stop);
  // A drag that ends on a node is not a click on it.
  svg.addEventListener("click", (e) => { if (moved) { e.preventDefault(); moved = false; } }, true);
  svg.addEventListener("dblclick", fit);
  box.querySelectorAll("[data-zoom]").forEach((button) => button.addEventListener("click", () => {
    const how = button.dataset.zoom, [w, h] = screen();
    if (how === "fit") { fit(); return; }
    zoom(how === "in" ? 1 / 1.25 : 1.25, x + w * s / 2, y + h * s / 2);
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
