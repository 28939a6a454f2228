// The console's only script: the digit canvas, a busy state on the trigger buttons, and the training page's
// progress. The pages work without it (upload instead of drawing; the job page refreshes itself).
"use strict";

function setUpCanvas() {
  const canvas = document.getElementById("drawing-canvas");
  if (!canvas) return;
  const context = canvas.getContext("2d");
  const hidden = document.getElementById("drawing-data");
  let drawn = false, down = false, last = null;
  const pen = { x: canvas.width / 2, y: canvas.height / 2 };
  context.lineCap = "round";
  context.lineJoin = "round";
  // Strokes as wide as one cell of the model's grid (8x8 for digits), black on white.
  context.lineWidth = Math.max(8, canvas.width / Number(canvas.dataset.grid || 8) * 0.9);
  function clear() {
    context.fillStyle = "#ffffff";
    context.fillRect(0, 0, canvas.width, canvas.height);
    drawn = false;
    hidden.value = "";
  }
  function point(event) {
    const box = canvas.getBoundingClientRect();
    return { x: (event.clientX - box.left) * canvas.width / box.width,
             y: (event.clientY - box.top) * canvas.height / box.height };
  }
  function line(from, to) {
    context.strokeStyle = "#000000";
    context.beginPath();
    context.moveTo(from.x, from.y);
    context.lineTo(to.x + 0.01, to.y);
    context.stroke();
    drawn = true;
  }
  canvas.addEventListener("pointerdown", (event) => {
    down = true; last = point(event); line(last, last);
    canvas.setPointerCapture(event.pointerId);
    event.preventDefault();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!down) return;
    const next = point(event); line(last, next); last = next;
  });
  for (const end of ["pointerup", "pointercancel"]) canvas.addEventListener(end, () => { down = false; });
  // Keyboard drawing: the arrow keys draw from the pen's position, Escape clears.
  canvas.addEventListener("keydown", (event) => {
    const step = canvas.width / 14;
    const moves = { ArrowUp: [0, -step], ArrowDown: [0, step], ArrowLeft: [-step, 0], ArrowRight: [step, 0] };
    if (event.key === "Escape") { clear(); event.preventDefault(); return; }
    const move = moves[event.key];
    if (!move) return;
    const next = { x: Math.min(canvas.width, Math.max(0, pen.x + move[0])),
                   y: Math.min(canvas.height, Math.max(0, pen.y + move[1])) };
    line({ ...pen }, next); pen.x = next.x; pen.y = next.y;
    event.preventDefault();
  });
  document.getElementById("drawing-clear").addEventListener("click", clear);
  canvas.closest("form").addEventListener("submit", () => {
    if (drawn) hidden.value = canvas.toDataURL("image/png");
  });
  clear();
}

function busyButtons() {
  for (const [formId, busyText] of [["predict-form", "Predicting…"], ["train-form", "Starting the training…"]]) {
    const form = document.getElementById(formId);
    if (!form) continue;
    form.addEventListener("submit", () => {
      const button = form.querySelector("button[type=submit]");
      button.disabled = true;
      button.textContent = busyText;
    });
  }
}

function followJob() {
  const section = document.getElementById("job");
  if (!section) return;
  const url = section.dataset.statusUrl;
  const order = ["starting", "training", "done"];
  async function poll() {
    let job;
    try {
      const answer = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/json" } });
      if (!answer.ok) throw new Error(String(answer.status));
      job = await answer.json();
    } catch (error) {
      document.getElementById("job-status").textContent = "The console did not answer (" + error.message +
        "); retrying…";
      setTimeout(poll, 2000);
      return;
    }
    section.dataset.phase = job.phase;
    document.getElementById("job-status").innerHTML = job.html.status;
    document.getElementById("job-result").innerHTML = job.html.result;
    const reached = order.indexOf(job.phase);
    for (const item of document.querySelectorAll("#job-phases li")) {
      const index = order.indexOf(item.dataset.phase);
      item.className = index < reached || job.phase === "done" ? "done" : (index === reached ? "current" : "");
    }
    const finished = job.phase === "failed" || (job.phase === "done" && job.served_all);
    if (!finished) setTimeout(poll, job.phase === "done" ? 1000 : 500);
  }
  poll();
}

setUpCanvas();
busyButtons();
followJob();
