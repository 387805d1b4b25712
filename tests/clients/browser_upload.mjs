// Drives the example upload page (examples/browser-upload) in headless
// Chromium the way a person would: sign in, pick a file, press Upload, wait
// for the page to report the outcome. Prints what it saw as JSON.
//
// Usage: node browser_upload.mjs APP_URL USER FILE
// CHROMIUM names the browser binary (default /usr/bin/chromium).
import { chromium } from "playwright-core";

const [appUrl, user, file] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  // No sandbox (CI runs as root); nothing that would reach the network.
  args: [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
try {
  const page = await browser.newPage();
  const uploads = [];
  page.on("response", (r) => {
    if (r.request().method() === "POST" && !r.url().startsWith(appUrl)) {
      uploads.push({ url: r.url(), status: r.status(), headers: r.headers() });
    }
  });
  await page.goto(appUrl);
  await page.fill("#user", user);
  await Promise.all([page.waitForURL(appUrl + "/"), page.click("#signin")]);
  await page.waitForFunction(() => document.getElementById("who").textContent !== "…");
  await page.setInputFiles("#file", file);
  await page.evaluate(() => {
    window.progressSeen = [];
    const p = document.getElementById("progress");
    new MutationObserver(() => window.progressSeen.push(p.value)).observe(p, { attributes: true });
  });
  await page.click("#upload");
  await page.waitForFunction(
    () => /^Upload(ed| failed)/.test(document.getElementById("status").textContent),
    null,
    { timeout: 60000 },
  );
  console.log(JSON.stringify({
    status: await page.textContent("#status"),
    where: await page.textContent("#where"),
    progress: await page.evaluate(() => window.progressSeen),
    uploads,
  }));
} finally {
  await browser.close();
}
