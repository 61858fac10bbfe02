// vaekit latent explorer: sliders over the most active latent dimensions decode live through the
// service's /decode; the map shows encoded data points (coloured by label); clicking one shows its
// example and reconstruction; two chosen points are interpolated. No external resources.
"use strict";

const PALETTE = ["#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7",
  "#9c755f", "#bab0ac", "#2f4b7c", "#a05195"];
const SPAN = 3; // sliders run from -SPAN to +SPAN posterior standard units
const STEPS = 8; // frames in the interpolation strip
const state = { info: null, map: null, z: [], label: null, busy: false, pending: false, selected: null, a: null, b: null };

const $ = (id) => document.getElementById(id);

async function call(url, body) {
  const options = body === undefined ? {} : {
    method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body),
  };
  const response = await fetch(url, options);
  const data = await response.json();
  if (!response.ok) throw new Error(data.detail || response.statusText);
  return data;
}

function pictureShape() {
  const rows = state.info.rows;
  if (rows.picture && rows.picture.length === 3) return rows.picture;
  if (rows.kind === "image") return rows.shape.length === 3 ? rows.shape : [1, ...rows.shape];
  return null;
}

function drawPicture(values, shape) {
  const [c, h, w] = shape;
  const canvas = document.createElement("canvas");
  canvas.width = w;
  canvas.height = h;
  const ctx = canvas.getContext("2d");
  const image = ctx.createImageData(w, h);
  const level = (v) => Math.max(0, Math.min(255, Math.round(v * 255)));
  for (let i = 0; i < h * w; i++) {
    const r = level(values[i]);
    image.data[4 * i] = r;
    image.data[4 * i + 1] = c >= 3 ? level(values[h * w + i]) : r;
    image.data[4 * i + 2] = c >= 3 ? level(values[2 * h * w + i]) : r;
    image.data[4 * i + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
  return canvas;
}

function drawRow(values, columns) {
  const table = document.createElement("table");
  table.className = "row";
  values.forEach((v, i) => {
    const tr = table.insertRow();
    const th = document.createElement("th");
    th.textContent = columns[i] ?? `x${i}`;
    tr.appendChild(th);
    tr.insertCell().textContent = typeof v === "number" ? v.toPrecision(4) : (v === null ? "missing" : String(v));
  });
  return table;
}

// One decoded row (out = a /decode, /sample or /explore/points answer) as a picture or a table.
function renderRow(out, index) {
  const row = out.x[index];
  const shape = pictureShape();
  if (shape) return drawPicture(row.flat(Infinity), shape);
  return drawRow(Array.isArray(row) ? row.flat(Infinity) : [row], out.columns || state.info.rows.columns);
}

function show(container, node) {
  container.replaceChildren(node);
  container.dataset.version = String(Number(container.dataset.version || 0) + 1);
}

function condition(n) {
  if (state.info.condition === "label") return { y: Array(n).fill(state.label) };
  if (state.info.condition === "covariates") return { y: Array(n).fill(Array(state.info.condition_size).fill(0)) };
  return {};
}

async function decodeNow() {
  if (state.busy) { state.pending = true; return; }
  state.busy = true;
  try {
    const out = await call("/decode", { z: [state.z], ...condition(1) });
    show($("decoded"), renderRow(out, 0));
    $("status").textContent = `z = [${state.z.map((v) => v.toFixed(2)).join(", ")}]`;
  } catch (err) {
    $("status").textContent = `error: ${err.message}`;
  } finally {
    state.busy = false;
    if (state.pending) { state.pending = false; decodeNow(); }
  }
}

function buildSliders() {
  const box = $("sliders");
  box.replaceChildren();
  const dims = state.map.dims;
  $("slider-note").textContent = `${dims.length} of ${state.info.latent_dim} dimensions, most active first ` +
    "(variance of the posterior means over the map's points).";
  dims.forEach((d, i) => {
    const row = document.createElement("label");
    row.className = "slider";
    const name = document.createElement("span");
    name.textContent = `z${d} (var ${state.map.dim_variance[i].toFixed(2)})`;
    const input = document.createElement("input");
    Object.assign(input, { type: "range", min: -SPAN, max: SPAN, step: 0.01, value: 0 });
    input.dataset.dim = String(d);
    input.id = `slider-${d}`;
    const value = document.createElement("output");
    value.textContent = "0.00";
    input.addEventListener("input", () => {
      state.z[d] = Number(input.value);
      value.textContent = state.z[d].toFixed(2);
      decodeNow();
    });
    row.append(name, input, value);
    box.appendChild(row);
  });
}

function syncSliders() {
  for (const input of $("sliders").querySelectorAll("input")) {
    const d = Number(input.dataset.dim);
    input.value = String(Math.max(-SPAN, Math.min(SPAN, state.z[d])));
    input.nextElementSibling.textContent = state.z[d].toFixed(2);
  }
}

function drawMap() {
  const svg = $("map");
  const pts = state.map.points;
  const xs = pts.map((p) => p[0]), ys = pts.map((p) => p[1]);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const sx = (v) => 12 + 376 * (v - x0) / ((x1 - x0) || 1);
  const sy = (v) => 388 - 376 * (v - y0) / ((y1 - y0) || 1);
  const names = state.map.class_names || [];
  const colour = (label) => (label === null || label === undefined) ? PALETTE[0]
    : PALETTE[Math.max(0, names.indexOf(label)) % PALETTE.length];
  const ns = "http://www.w3.org/2000/svg";
  svg.replaceChildren();
  pts.forEach((p, i) => {
    const c = document.createElementNS(ns, "circle");
    c.setAttribute("cx", sx(p[0]).toFixed(1));
    c.setAttribute("cy", sy(p[1]).toFixed(1));
    c.setAttribute("r", "4");
    const label = state.map.labels ? state.map.labels[i] : null;
    c.setAttribute("fill", colour(label));
    c.dataset.index = String(i);
    const title = document.createElementNS(ns, "title");
    title.textContent = `point ${i}` + (label === null ? "" : `, label ${label}`);
    c.appendChild(title);
    c.addEventListener("click", () => selectPoint(i));
    svg.appendChild(c);
  });
  $("map-note").textContent = `${pts.length} ${state.map.source}; axes: ${state.map.axes}.`;
  const legend = $("legend");
  legend.replaceChildren();
  if (state.map.labels) {
    for (const name of names) {
      const item = document.createElement("span");
      item.style.setProperty("--c", colour(name));
      item.textContent = name;
      legend.appendChild(item);
    }
  }
}

async function selectPoint(i) {
  const point = await call(`/explore/points/${i}`);
  state.selected = point;
  for (const c of $("map").querySelectorAll("circle.selected")) c.classList.remove("selected");
  $("map").querySelector(`circle[data-index="${i}"]`).classList.add("selected");
  $("point-index").textContent = String(i);
  $("point-label").textContent = point.label === null ? "" : `label ${point.label}`;
  show($("point-example"), renderRow(point.example, 0));
  show($("point-recon"), renderRow(point.reconstruction, 0));
  $("point-panel").hidden = false;
  if (point.y !== null && state.info.condition === "label") { state.label = point.y; $("label").value = point.y; }
  state.z = point.z.slice();
  syncSliders();
  decodeNow();
}

async function interpolate() {
  for (const c of $("map").querySelectorAll("circle.end")) c.classList.remove("end");
  for (const p of [state.a, state.b]) if (p) $("map").querySelector(`circle[data-index="${p.index}"]`).classList.add("end");
  if (!state.a || !state.b) {
    $("interp-note").textContent = state.a ? `A = point ${state.a.index}; now choose B.` : `B = point ${state.b.index}; now choose A.`;
    return;
  }
  const z = [];
  for (let s = 0; s < STEPS; s++) {
    const t = s / (STEPS - 1);
    z.push(state.a.z.map((v, d) => (1 - t) * v + t * state.b.z[d]));
  }
  const out = await call("/decode", { z, ...condition(STEPS) });
  const strip = document.createElement("div");
  strip.className = "strip";
  out.x.forEach((_, i) => strip.appendChild(renderRow(out, i)));
  show($("interp"), strip);
  $("interp-note").textContent = `${STEPS} steps on the straight line from point ${state.a.index} to point ${state.b.index} in latent space.`;
}

async function start() {
  try {
    state.info = await call("/info");
    $("model-name").textContent = `${state.info.name} — densities in ${state.info.unit}`;
    state.map = await call("/explore/map");
  } catch (err) {
    $("model-name").textContent = `error: ${err.message}`;
    return;
  }
  state.z = Array(state.info.latent_dim).fill(0);
  if (state.info.condition === "label") {
    const select = $("label");
    for (const name of state.info.class_names) select.add(new Option(name, name));
    state.label = state.info.class_names[0];
    select.addEventListener("change", () => { state.label = select.value; decodeNow(); });
    $("label-picker").hidden = false;
  }
  buildSliders();
  drawMap();
  $("reset").addEventListener("click", () => { state.z = Array(state.info.latent_dim).fill(0); syncSliders(); decodeNow(); });
  $("set-a").addEventListener("click", () => { state.a = state.selected; interpolate(); });
  $("set-b").addEventListener("click", () => { state.b = state.selected; interpolate(); });
  document.body.dataset.ready = "true";
  await decodeNow();
}

start();
