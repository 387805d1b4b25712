// Uploads the chosen file straight to s3warden with a presigned POST form the
// backend signed for this user; the backend never sees the file.
const $ = (id) => document.getElementById(id);
const status = (text, kind) => { $("status").textContent = text; $("status").className = kind || ""; };

async function me() {
  const r = await fetch("/api/me");
  if (!r.ok) { location.href = "/"; return; }
  const m = await r.json();
  $("who").textContent = m.user;
  $("where").textContent = `${m.bucket}/${m.user}/`;
}

function postForm(url, fields, file, onProgress) {
  const form = new FormData();
  for (const [k, v] of Object.entries(fields)) form.append(k, v);
  form.append("file", file); // S3 requires the file last
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", url);
    xhr.upload.onprogress = (e) => { if (e.lengthComputable) onProgress(e.loaded / e.total); };
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300)
      ? resolve(xhr)
      : reject(new Error(`${xhr.status} ${(/<Code>(.*?)<\/Code>/.exec(xhr.responseText) || [])[1] || xhr.statusText}`));
    xhr.onerror = () => reject(new Error("network error (is s3warden's [cors] allowing this page?)"));
    xhr.send(form);
  });
}

$("file").addEventListener("change", () => { $("upload").disabled = !$("file").files.length; });

$("upload").addEventListener("click", async () => {
  const file = $("file").files[0];
  if (!file) return;
  $("upload").disabled = true;
  $("progress").hidden = false;
  $("progress").value = 0;
  status(`Uploading ${file.name}…`);
  try {
    const r = await fetch("/api/presign", { method: "POST" });
    if (!r.ok) throw new Error(`presign failed: ${r.status}`);
    const { url, fields } = await r.json();
    await postForm(url, fields, file, (f) => { $("progress").value = Math.round(f * 100); });
    $("progress").value = 100;
    status(`Uploaded ${file.name}.`, "done");
  } catch (e) {
    status(`Upload failed: ${e.message}`, "error");
  } finally {
    $("upload").disabled = false;
  }
});

me();
