/**
 * The page at /tab/: boots this origin's tab node and says what it is. A
 * script that wants the node imports this module (the same module instance
 * as the page's): `const { node } = await import('/tab/page.js')`.
 */
import { startTabNode, type TabNode } from './node.js';

const show = (id: string, text: string) => {
  const element = document.getElementById(id);
  if (element) element.textContent = text;
};

const boot = async (): Promise<TabNode> => {
  try {
    const started = await startTabNode();
    show('principal', started.identity.principal);
    show('key', started.identity.kind === 'webcrypto' ? 'WebCrypto Ed25519, not extractable' : 'seed in IndexedDB (no WebCrypto Ed25519 here)');
    show('storage', `IndexedDB ${started.database}`);
    show('records', String(started.kernel.journal.length));
    started.kernel.journal.onAppend(() => show('records', String(started.kernel.journal.length)));
    show('status', 'running');
    return started;
  } catch (error) {
    show('principal', '—');
    show('status', `cannot start: ${(error as Error).message}`);
    throw error;
  }
};

export const node: TabNode = await boot();
