// Classify a drawn or uploaded image with an edgekit-exported ONNX model, entirely in the browser.
// Labels and preprocessing come from the model's own metadata (ONNX metadata_props "edgekit"),
// with labels.json next to the model as a fallback for models exported without it.
import * as ort from "./node_modules/onnxruntime-web/dist/ort.wasm.min.mjs";

const params = new URLSearchParams(location.search);
const MODEL_URL = params.get("model") || "model.onnx";
ort.env.wasm.wasmPaths = new URL("./node_modules/onnxruntime-web/dist/", location.href).href;
ort.env.wasm.numThreads = 1; // threads need cross-origin isolation (COOP/COEP headers) that http.server does not send

const $ = (id) => document.getElementById(id);
const pad = $("pad");
const ctx = pad.getContext("2d", { willReadFrequently: true });
let session = null;
let meta = null;

function setStatus(text, state) {
  $("status").textContent = text;
  $("status").className = state === "error" ? "error" : "";
  document.body.dataset.state = state; // hooks for automated tests: loading | ready | busy | done | error
}

// --- metadata: read ModelProto.metadata_props (field 14) straight from the protobuf bytes ---------------
function readVarint(buf, pos) {
  let value = 0, shift = 0, byte;
  do {
    byte = buf[pos++];
    value += (byte & 0x7f) * 2 ** shift;
    shift += 7;
  } while (byte & 0x80);
  return [value, pos];
}

function fields(buf) {
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    let tag, len;
    [tag, pos] = readVarint(buf, pos);
    const field = Math.floor(tag / 8), wire = tag & 7;
    if (wire === 0) { [, pos] = readVarint(buf, pos); }
    else if (wire === 1) { pos += 8; }
    else if (wire === 5) { pos += 4; }
    else if (wire === 2) { [len, pos] = readVarint(buf, pos); out.push([field, buf.subarray(pos, pos + len)]); pos += len; }
    else { throw new Error(`unsupported protobuf wire type ${wire}`); }
  }
  return out;
}

export function onnxMetadataProps(bytes) {
  const text = new TextDecoder();
  const props = {};
  for (const [field, body] of fields(bytes)) {
    if (field !== 14) continue; // ModelProto.metadata_props: StringStringEntryProto {1: key, 2: value}
    let key = "", value = "";
    for (const [f, v] of fields(body)) {
      if (f === 1) key = text.decode(v);
      if (f === 2) value = text.decode(v);
    }
    props[key] = value;
  }
  return props;
}

async function loadMeta(bytes) {
  const props = onnxMetadataProps(bytes);
  let m = {};
  if (props.edgekit) m = JSON.parse(props.edgekit);
  else if (props.labels) m = { labels: JSON.parse(props.labels) };
  if (!m.labels) {
    const r = await fetch(new URL("labels.json", new URL(MODEL_URL, location.href)));
    if (r.ok) m.labels = await r.json();
  }
  m.source = props.edgekit ? "model metadata" : m.labels ? "labels.json" : "none (class indices)";
  return {
    labels: m.labels || null, input_shape: m.input_shape || [28, 28, 1], layout: m.layout || "NHWC",
    scale: m.scale ?? 1 / 255, mean: m.mean ?? 0, std: m.std ?? 1, color: m.color || "grayscale",
    output: m.output || "softmax", source: m.source, artifact_id: m.artifact_id || "",
  };
}

// --- preprocessing ---------------------------------------------------------------------------------------
function inputTensor(source) {
  const [h, w, c] = meta.layout === "NCHW" ? [meta.input_shape[1], meta.input_shape[2], meta.input_shape[0]] : meta.input_shape;
  const small = document.createElement("canvas");
  small.width = w; small.height = h;
  const sctx = small.getContext("2d", { willReadFrequently: true });
  sctx.imageSmoothingQuality = "high";
  sctx.drawImage(source, 0, 0, w, h);
  const rgba = sctx.getImageData(0, 0, w, h).data;
  const invert = $("invert").checked;
  const data = new Float32Array(h * w * c);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const p = (y * w + x) * 4;
      const px = c === 1 ? [(rgba[p] + rgba[p + 1] + rgba[p + 2]) / 3] : [rgba[p], rgba[p + 1], rgba[p + 2]];
      for (let k = 0; k < c; k++) {
        const v = invert ? 255 - px[k] : px[k];
        const norm = (v * meta.scale - meta.mean) / meta.std;
        const idx = meta.layout === "NCHW" ? k * h * w + y * w + x : (y * w + x) * c + k;
        data[idx] = norm;
      }
    }
  }
  const dims = meta.layout === "NCHW" ? [1, c, h, w] : [1, h, w, c];
  return new ort.Tensor("float32", data, dims);
}

function softmax(v) {
  const m = Math.max(...v), e = v.map((x) => Math.exp(x - m)), s = e.reduce((a, b) => a + b, 0);
  return e.map((x) => x / s);
}

async function classify(source = pad) {
  if (!session) return;
  setStatus("classifying…", "busy");
  try {
    const t0 = performance.now();
    const out = await session.run({ [session.inputNames[0]]: inputTensor(source) });
    const ms = performance.now() - t0;
    let scores = Array.from(out[session.outputNames[0]].data);
    if (meta.output === "logits") scores = softmax(scores);
    const order = scores.map((s, i) => [s, i]).sort((a, b) => b[0] - a[0]);
    const name = (i) => (meta.labels && meta.labels[i] !== undefined ? String(meta.labels[i]) : String(i));
    const [best, bestIdx] = order[0];
    $("label").textContent = name(bestIdx);
    $("label").dataset.index = String(bestIdx);
    $("confidence").textContent = `confidence ${(best * 100).toFixed(1)} %`;
    $("top").innerHTML = "";
    for (const [s, i] of order.slice(0, 3)) {
      const li = document.createElement("li");
      li.textContent = `${name(i)}: ${(s * 100).toFixed(1)} %`;
      $("top").appendChild(li);
    }
    $("timing").textContent = `${ms.toFixed(1)} ms (onnxruntime-web, wasm, 1 thread)`;
    window.lastScores = scores;
    setStatus(`labels from ${meta.source}`, "done");
  } catch (e) {
    setStatus(`inference failed: ${e.message || e}`, "error");
    console.error(e);
  }
}

// --- drawing, upload --------------------------------------------------------------------------------------
function clearPad() {
  ctx.fillStyle = "#000";
  ctx.fillRect(0, 0, pad.width, pad.height);
}

function showImage(img) {
  clearPad();
  ctx.imageSmoothingEnabled = false;
  ctx.drawImage(img, 0, 0, pad.width, pad.height);
  // Paper photos are dark ink on a light background; the models expect light ink on dark.
  const d = ctx.getImageData(0, 0, pad.width, pad.height).data;
  let sum = 0;
  for (let i = 0; i < d.length; i += 4) sum += d[i] + d[i + 1] + d[i + 2];
  $("invert").checked = sum / (d.length / 4) / 3 > 127;
}

async function loadImage(url) {
  const img = new Image();
  img.src = url;
  await img.decode();
  return img;
}

let drawing = false;
function stroke(ev) {
  const r = pad.getBoundingClientRect();
  const x = ((ev.clientX - r.left) * pad.width) / r.width, y = ((ev.clientY - r.top) * pad.height) / r.height;
  ctx.fillStyle = "#fff";
  ctx.beginPath();
  ctx.arc(x, y, 11, 0, 2 * Math.PI);
  ctx.fill();
}
pad.addEventListener("pointerdown", (e) => { drawing = true; $("invert").checked = false; stroke(e); });
pad.addEventListener("pointermove", (e) => drawing && stroke(e));
window.addEventListener("pointerup", () => { if (drawing) { drawing = false; classify(); } });
$("clear").addEventListener("click", () => { clearPad(); $("label").textContent = "–"; });
$("classify").addEventListener("click", () => classify());
$("invert").addEventListener("change", () => classify());
$("upload").addEventListener("change", async (e) => {
  const file = e.target.files[0];
  if (!file) return;
  const img = await loadImage(URL.createObjectURL(file));
  showImage(img);
  await classify(img);
});

// --- start ------------------------------------------------------------------------------------------------
async function main() {
  setStatus("loading the model…", "loading");
  clearPad();
  const r = await fetch(MODEL_URL);
  if (!r.ok) throw new Error(`${MODEL_URL}: HTTP ${r.status} (export a model and copy it here, see README.md)`);
  const bytes = new Uint8Array(await r.arrayBuffer());
  meta = await loadMeta(bytes);
  session = await ort.InferenceSession.create(bytes, { executionProviders: ["wasm"] });
  setStatus(`ready: ${MODEL_URL}, labels from ${meta.source}`, "ready");
  const image = params.get("image"); // ?image=URL classifies that image at start (used by the tests)
  if (image) {
    const img = await loadImage(image);
    showImage(img);
    await classify(img);
  }
}

main().catch((e) => {
  setStatus(`error: ${e.message || e}`, "error");
  console.error(e);
});
