// Talking to the DeepBeat server: every API request carries the run's token (from the page's own address),
// and a refused request becomes an Error holding the server's one-line reason.

const token = new URLSearchParams(location.search).get("token") || "";

/** The page's element with this id. */
export const $ = (id) => document.getElementById(id);

/** The API path with the token as a query parameter (for links and event streams, which cannot set headers). */
export function withToken(path) {
  return `${path}${path.includes("?") ? "&" : "?"}token=${encodeURIComponent(token)}`;
}

async function request(method, path, body, contentType) {
  const headers = { "X-DeepBeat-Token": token };
  if (contentType) headers["Content-Type"] = contentType;
  let response;
  try {
    response = await fetch(path, { method, headers, body });
  } catch (error) {
    throw new Error("the DeepBeat server cannot be reached; is it still running?");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) throw new Error(data.error || `${method} ${path}: HTTP ${response.status}`);
  return data;
}

export const getJSON = (path) => request("GET", path);
export const postJSON = (path, data) => request("POST", path, JSON.stringify(data), "application/json");
export const postBytes = (path, bytes) => request("POST", path, bytes, "application/octet-stream");

/** Show a one-line error in the page's error bar (null hides it). */
function showError(message) {
  const bar = $("error");
  bar.textContent = message || "";
  bar.hidden = !message;
}

/** Run an async action, showing its error (if any) in the error bar; its result, or undefined. */
export async function guarded(action) {
  try {
    const result = await action();
    showError(null);
    return result;
  } catch (error) {
    showError(error.message);
    return undefined;
  }
}

/** A drum class name as a label: "closed_hihat" -> "closed hihat". */
export const drumName = (name) => name.replace(/_/g, " ");

/** A new element with a class and text. */
export function element(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined) node.textContent = text;
  return node;
}
