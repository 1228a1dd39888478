// The web console as a person uses it, in headless Chromium (Debian's /usr/bin/chromium driven
// by playwright-core; no browser is downloaded). Started by console/tests/browser.rs, which
// runs the real stack (nats-server, Postgres, command API, projector, query API, console) and
// passes its URLs and tokens in the environment.
//
// Every page visited is checked with axe-core; the run fails on any serious or critical
// violation. The last line is the summary scripts/test prints:
//   console: N steps passed, axe: 0 serious/critical
import { chromium } from "playwright-core";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { randomUUID } from "node:crypto";

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve("axe-core/axe.min.js"), "utf8");

function env(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set`);
  return value;
}
const CONSOLE = env("CONSOLE_URL");
const COMMANDS = env("COMMAND_API_URL");
const ALICE = env("ALICE_TOKEN");
const SCREENSHOT = process.env.SCREENSHOT_PATH;
// Set when the stack's console links traces to Grafana (never fetched: the host is .invalid).
const GRAFANA = process.env.GRAFANA_URL;
const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";
// Each wait in a step: the projector and the feed answer within milliseconds here; fifteen
// seconds is a wait for a slow, shared machine, never a sleep.
const WAIT_MS = 15_000;

let steps = 0;
// The page a failed step shows in its report.
let shownPage = null;
const serious = [];

async function step(name, body) {
  const started = Date.now();
  try {
    await body();
  } catch (e) {
    console.error(`not ok - ${name}: ${e.stack || e}`);
    if (shownPage) {
      const main = await shownPage.locator("main").innerHTML().catch(() => "(no page)");
      console.error(`the page at ${shownPage.url()}:\n${main}`);
    }
    throw e;
  }
  steps += 1;
  console.log(`ok ${steps} - ${name} (${Date.now() - started} ms)`);
}

function check(condition, message) {
  if (!condition) throw new Error(message);
}

// axe-core in the page (evaluated through the DevTools protocol: the console's CSP forbids
// inline scripts, and the check must not weaken it).
async function axe(page, label) {
  await page.evaluate(AXE_SOURCE);
  const found = await page.evaluate(async () => {
    const result = await window.axe.run(document, { resultTypes: ["violations"] });
    return result.violations
      .filter((v) => v.impact === "serious" || v.impact === "critical")
      .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(" ")).join(", ")}`);
  });
  for (const violation of found) {
    console.error(`axe on ${label}: ${violation}`);
    serious.push(`${label}: ${violation}`);
  }
}

// A write through the command API by "another client" (not the page).
async function deposit(account, amount) {
  const answer = await fetch(`${COMMANDS}/v1/accounts/${account}/deposits`, {
    method: "POST",
    headers: {
      authorization: `Bearer ${ALICE}`,
      "content-type": "application/json",
      "idempotency-key": randomUUID(),
    },
    body: JSON.stringify({ amount }),
  });
  const text = await answer.text();
  check(answer.status === 201, `deposit answered ${answer.status}: ${text}`);
  return JSON.parse(text);
}

async function textOf(page, selector) {
  return (await page.locator(selector).first().textContent())?.trim();
}

// Waits until htmx has processed the history section now in the page (console.js marks it):
// a filter changed before then would go unheard.
async function historyReady(page) {
  await page.locator("#history[data-ready=true]").waitFor({ timeout: WAIT_MS });
}

async function waitText(page, selector, expected) {
  await page.waitForFunction(
    ([sel, want]) => document.querySelector(sel)?.textContent.trim() === want,
    [selector, expected],
    { timeout: WAIT_MS },
  );
}

const browser = await chromium.launch({
  executablePath: CHROMIUM,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.setDefaultTimeout(WAIT_MS);
  shownPage = page;
  page.on("pageerror", (e) => console.error(`page error: ${e}`));

  await step("sign in with a token: kept in an HttpOnly, SameSite=Strict cookie, not in the URL", async () => {
    await page.goto(`${CONSOLE}/`);
    check(page.url().endsWith("/sign-in"), `not sent to sign in: ${page.url()}`);
    await axe(page, "sign-in");
    await page.fill("#sign-in-token", ALICE);
    await page.getByRole("button", { name: "Sign in", exact: true }).click();
    await page.waitForURL(/\/accounts$/);
    check(!page.url().includes(ALICE.slice(-20)), "the token is in the URL");
    const cookie = (await context.cookies()).find((c) => c.name === "tally_session");
    check(cookie && cookie.httpOnly && cookie.sameSite === "Strict", `cookie: ${JSON.stringify(cookie)}`);
    check(!(await page.evaluate(() => document.cookie)).includes("tally_session"), "a script can read the cookie");
  });

  await step("open two accounts from the accounts page", async () => {
    await axe(page, "accounts");
    for (const id of ["alice-savings", "alice-main"]) {
      await page.goto(`${CONSOLE}/accounts`);
      await page.fill("#open-new_account_id", id);
      await page.getByRole("button", { name: "Open account" }).click();
      await page.waitForURL(new RegExp(`/accounts/${id}$`));
    }
    await page.goto(`${CONSOLE}/accounts`);
    check((await page.locator("table a", { hasText: "alice-savings" }).count()) === 1, "alice-savings not listed");
    await page.getByRole("link", { name: "alice-main" }).click();
    await page.waitForURL(/\/accounts\/alice-main$/);
    await waitText(page, "#feed-status", "live");
  });

  await step("deposit from the account page", async () => {
    await axe(page, "account");
    // Set once: a reload would lose it, so its presence later proves the page was not reloaded.
    await page.evaluate(() => { window.__sameDocument = true; });
    await page.fill("#deposit-amount", "10000");
    await page.locator("#deposit-form").getByRole("button", { name: "Deposit" }).click();
    await page.locator("#deposit-done").waitFor();
    check((await textOf(page, "#deposit-done")).includes("balance 10000"), await textOf(page, "#deposit-done"));
    await waitText(page, "#balance", "10000");
  });

  await step("transfer to the other account", async () => {
    await page.fill("#transfer-account_id", "alice-savings");
    await page.fill("#transfer-amount", "2500");
    await page.locator("#transfer-form").getByRole("button", { name: "Transfer" }).click();
    await page.locator("#transfer-done").waitFor();
    await waitText(page, "#balance", "7500");
    await waitText(page, "#available", "7500");
  });

  await step("the balance changes without a reload when another client writes through the API", async () => {
    await deposit("alice-main", 1000);
    await waitText(page, "#balance", "8500");
    check(await page.evaluate(() => window.__sameDocument === true), "the page was reloaded");
  });

  await step("page through the history and filter it by type", async () => {
    for (let i = 1; i <= 10; i += 1) await deposit("alice-main", i);
    await waitText(page, "#balance", "8555");
    // The history refreshes itself after live events; wait for the newest entry.
    await page.waitForFunction(
      () => document.querySelector("#history tbody tr td:nth-child(5)")?.textContent.trim() === "8555",
      null,
      { timeout: WAIT_MS },
    );
    const newest = Number(await textOf(page, "#history tbody tr td:first-child"));
    await page.getByRole("link", { name: "Older →" }).click();
    await page.getByRole("link", { name: "← Newest" }).waitFor();
    const older = Number(await textOf(page, "#history tbody tr td:first-child"));
    check(older < newest - 9, `page two starts at version ${older}, page one at ${newest}`);
    await page.getByRole("link", { name: "← Newest" }).click();
    await page.getByRole("link", { name: "← Newest" }).waitFor({ state: "detached" });
    await historyReady(page);
    await page.selectOption("#history-type", "transfer");
    await page.waitForFunction(() => {
      const kinds = [...document.querySelectorAll("#history tbody tr td:nth-child(3)")].map((td) => td.textContent.trim());
      return kinds.length === 1 && kinds[0] === "transfer";
    }, null, { timeout: WAIT_MS });
    await historyReady(page);
    await page.selectOption("#history-type", "");
    await page.waitForFunction(() => document.querySelectorAll("#history tbody tr").length === 10, null, { timeout: WAIT_MS });
    check(await page.evaluate(() => window.__sameDocument === true), "the page was reloaded");
  });

  await step("an overdraft is refused beside the amount field", async () => {
    await page.fill("#withdraw-amount", "1000000");
    await page.locator("#withdraw-form").getByRole("button", { name: "Withdraw" }).click();
    await page.locator("#withdraw-amount-error").waitFor();
    const message = await textOf(page, "#withdraw-amount-error");
    check(/^Insufficient funds/.test(message), `error text: ${message}`);
    check((await page.getAttribute("#withdraw-amount", "aria-invalid")) === "true", "the field is not marked invalid");
    check((await page.getAttribute("#withdraw-amount", "aria-describedby")) === "withdraw-amount-error", "the error is not tied to the field");
    await waitText(page, "#balance", "8555");
    await axe(page, "account with a refusal");
    if (SCREENSHOT) await page.screenshot({ path: SCREENSHOT, fullPage: true });
  });

  await step("the account page fits a phone-sized screen", async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth + 1);
    check(fits, "the page scrolls sideways at 390 px");
    await axe(page, "account on a phone");
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step("place a hold, capture part of it, refuse a second capture, void another", async () => {
    const holdId = async () => {
      // The form is swapped for its answer: wait for a message other than the last one.
      const before = (await page.locator("#hold-done").count()) ? await textOf(page, "#hold-done") : "";
      await page.fill("#hold-amount", "500");
      await page.locator("#hold-form").getByRole("button", { name: "Hold" }).click();
      await page.waitForFunction(
        (last) => { const t = document.querySelector("#hold-done")?.textContent.trim(); return t && t !== last; },
        before,
        { timeout: WAIT_MS },
      );
      const id = (await textOf(page, "#hold-done")).match(/Hold (\S+) placed/)?.[1];
      check(id, `no hold id in: ${await textOf(page, "#hold-done")}`);
      return id;
    };
    const first = await holdId();
    await waitText(page, "#held", "500");
    await waitText(page, "#available", "8055");
    await page.fill("#capture-hold_id", first);
    await page.fill("#capture-amount", "200");
    await page.locator("#capture-form").getByRole("button", { name: "Capture" }).click();
    await page.locator("#capture-done").waitFor();
    await waitText(page, "#held", "0");
    await waitText(page, "#balance", "8355");
    await page.fill("#capture-hold_id", first);
    await page.locator("#capture-form").getByRole("button", { name: "Capture" }).click();
    await page.locator("#capture-hold_id-error").waitFor();
    const second = await holdId();
    await waitText(page, "#held", "500");
    await page.fill("#void-hold_id", second);
    await page.locator("#void-form").getByRole("button", { name: "Void" }).click();
    await page.locator("#void-done").waitFor();
    await waitText(page, "#held", "0");
    await waitText(page, "#available", "8355");
  });

  await step("place an order and see it paid", async () => {
    await page.goto(`${CONSOLE}/orders`);
    await axe(page, "orders");
    await page.fill("#place-account_id", "alice-main");
    await page.fill("#place-amount", "300");
    await page.fill("#place-description", "coffee beans");
    await page.getByRole("button", { name: "Place order" }).click();
    await page.locator(".order-status .status-paid").waitFor();
    await page.goto(`${CONSOLE}/orders`);
    check((await page.locator("tbody tr", { hasText: "coffee beans" }).locator(".status-paid").count()) === 1, "the paid order is not listed");
  });

  await step("sign out, then sign in as the development admin", async () => {
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.waitForURL(/\/sign-in$/);
    check(!(await context.cookies()).some((c) => c.name === "tally_session"), "the cookie outlived signing out");
    await page.getByRole("button", { name: "Sign in as admin" }).click();
    await page.waitForURL(/\/accounts$/);
    await page.fill("#owner", "alice");
    await page.getByRole("button", { name: "Search" }).click();
    await page.locator("table a", { hasText: "alice-main" }).waitFor();
    await axe(page, "accounts (admin)");
  });

  await step("upload a balance batch and watch the bar reach done", async () => {
    await page.goto(`${CONSOLE}/admin/batches`);
    await axe(page, "balance batches");
    const lines = ["account_id,amount"];
    for (let i = 1; i <= 25; i += 1) lines.push(`batch-${i},${i * 100}`);
    await page.setInputFiles("#batch-file", {
      name: "balances.csv",
      mimeType: "text/csv",
      buffer: Buffer.from(lines.join("\n") + "\n"),
    });
    await page.getByRole("button", { name: "Submit batch" }).click();
    await page.locator(".batch-progress").waitFor();
    await waitText(page, "#batch-status", "done");
    const bar = page.locator(".batch-progress progress");
    check((await bar.getAttribute("value")) === "25" && (await bar.getAttribute("max")) === "25", "the bar is not full");
    await axe(page, "balance batch done");
  });

  await step("the admin opens Operations (the projector's lag) and the Journal (recent messages, traces linked)", async () => {
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Operations" }).click();
    await page.waitForURL(/\/admin\/operations$/);
    const lag = await textOf(page, "#projector-lag");
    check(/^\d+$/.test(lag), `no lag figure: ${lag}`);
    check((await page.locator("#active-instance dl").count()) === 1, "no active projector is named");
    // The figures are asked for again every 2 s: the fragment is swapped in anew.
    await page.evaluate(() => { document.querySelector("#projector-lag").dataset.old = "1"; });
    await page.waitForFunction(() => {
      const lag = document.querySelector("#projector-lag");
      return lag && !lag.dataset.old;
    }, null, { timeout: WAIT_MS });
    await axe(page, "operations");
    await page.getByRole("navigation", { name: "Main" }).getByRole("link", { name: "Journal" }).click();
    await page.waitForURL(/\/admin\/journal$/);
    const rows = await page.locator("tr.journal-row").count();
    check(rows > 0, "the journal shows no messages");
    if (GRAFANA) {
      const links = await page.locator(`a.trace[href^="${GRAFANA}/explore?"]`).count();
      check(links > 0, "no traceparent links to Grafana");
    }
    await axe(page, "journal");
    await page.locator("#journal-older").click();
    await page.waitForURL(/before_seq=\d+$/);
    check((await page.locator("tr.journal-row").count()) > 0, "the older page is empty");
  });
} catch (e) {
  failed = true;
} finally {
  await browser.close();
}

console.log(`console: ${steps} steps passed, axe: ${serious.length} serious/critical`);
process.exit(failed || serious.length > 0 ? 1 : 0);
