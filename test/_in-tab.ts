import type { Page } from 'playwright-core';

/**
 * Run `body` (JS source of an async function body, with `node` the page's
 * tab node) on a /tab/ page; its JSON-able result. Through the DevTools
 * protocol's Runtime.evaluate, not `page.evaluate`: the page is locked down
 * (SES), whose tamed `eval` — which page.evaluate goes through — refuses any
 * source that mentions `import(`.
 */
export const inTab = async <T>(page: Page, body: string): Promise<T> => {
  const cdp = await page.context().newCDPSession(page);
  try {
    const expression = `(async () => { const { node } = await import('/tab/page.js'); ${body} })()`;
    const { result, exceptionDetails } = await cdp.send('Runtime.evaluate', { expression, awaitPromise: true, returnByValue: true });
    if (exceptionDetails) throw new Error(`in the tab: ${exceptionDetails.exception?.description ?? exceptionDetails.text}`);
    return result.value as T;
  } finally {
    await cdp.detach();
  }
};
