// Drives the example upload page (examples/browser-upload) in headless
// Chromium the way a person would: sign in, pick a file, press Upload, wait
// for the page to report the outcome. Prints what it saw as JSON.
//
// Usage: node browser_upload.mjs APP_URL USER FILE [openid]
// With "openid", the person presses "Sign in with OpenID" and signs in as
// USER on the OpenID provider's own login page instead of typing a name on
// the app's; IDP_CERT names the provider's certificate, the one the browser
// accepts besides its own roots (by its public key).
// CHROMIUM names the browser binary (default /usr/bin/chromium).
import { X509Certificate, createHash } from "node:crypto";
import { readFileSync } from "node:fs";

import { chromium } from "playwright-core";

const [appUrl, user, file, how] = process.argv.slice(2);
// No sandbox (CI runs as root); nothing that would reach the network.
const args = [
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
if (process.env.IDP_CERT) {
  const key = new X509Certificate(readFileSync(process.env.IDP_CERT)).publicKey;
  const spki = createHash("sha256").update(key.export({ type: "spki", format: "der" })).digest("base64");
  args.push(`--ignore-certificate-errors-spki-list=${spki}`);
}
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args,
});
try {
  const page = await browser.newPage();
  await page.goto(appUrl);
  let signedInAt = appUrl;
  if (how === "openid") {
    await Promise.all([page.waitForSelector('input[name="login"]'), page.click("#signin-openid")]);
    signedInAt = new URL(page.url()).origin;
    await page.fill('input[name="login"]', user);
    await page.fill('input[name="password"]', "any password");
    await Promise.all([page.waitForURL(appUrl + "/"), page.click('button[type="submit"]')]);
  } else {
    await page.fill("#user", user);
    await Promise.all([page.waitForURL(appUrl + "/"), page.click("#signin")]);
  }
  await page.waitForFunction(() => document.getElementById("who").textContent !== "…");
  // Signed in: from here on, every POST that leaves the app is an upload.
  const uploads = [];
  page.on("response", (r) => {
    if (r.request().method() === "POST" && !r.url().startsWith(appUrl)) {
      uploads.push({ url: r.url(), status: r.status(), headers: r.headers() });
    }
  });
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
    signedInAt,
    status: await page.textContent("#status"),
    where: await page.textContent("#where"),
    progress: await page.evaluate(() => window.progressSeen),
    uploads,
  }));
} finally {
  await browser.close();
}
