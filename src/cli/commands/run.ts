/**
 * `grid run`: run a WASI command module, a JS module's main export, or an
 * application: given an app's token (a pet name, a CID or the address `grid
 * app publish` printed), print its view of its document's current value as
 * text, each event with the change it applies (README: Applications by URL).
 */
import { existsSync } from 'node:fs';
import { asToken, isToken, parseCid, quote, type Token } from '../../interface/ids.js';
import { moduleKindOf } from '../../closures/modules.js';
import { readClosure, type Closure } from '../../closures/closure.js';
import type { GridValue } from '../../closures/values.js';
import { appOfEnv } from '../../apps/app.js';
import { renderUiText } from '../../apps/text.js';
import { ROLE_MODULE_ID } from '../../docs/documents.js';
import { homePaths } from '../../home/home.js';
import { PetNames } from '../../home/names.js';
import { DEFAULT_LIMITS } from '../../kernel/kernel.js';
import { openFsBlockStore } from '../../store/index.js';
import { runWasiCommand } from '../../vat-wasm/wasi.js';
import { toJsonText, UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, printOutcome, verb, type Invocation, type Session } from '../invocation.js';
import { isPathLike, readModuleFile, resolveId } from '../resolve.js';
import { callDoc } from './doc.js';

/** An app's address as `grid app publish` prints it (and its page is served at). */
const APP_ADDRESS = /^https?:\/\/[^/?#]+\/app\/([a-z2-7]{20,200})\/?$/;

/** A module's bytes: a file, else a pet name or CID in the home's store. */
const moduleBytes = async (names: PetNames, blocks: ReturnType<typeof openFsBlockStore>, ref: string): Promise<Uint8Array> => {
  if (existsSync(ref)) return readModuleFile(ref);
  if (isPathLike(ref)) throw new UsageError(`no such file: ${ref}`, 'ERR_NO_SUCH_FILE');
  const named = names.get(ref);
  if (named && named.kind !== 'module') throw new UsageError(`${quote(ref)} names a ${named.kind}, not a module or an app`);
  return blocks.get(parseCid(resolveId(ref, names), 'module'));
};

/** The app token `ref` stands for, if it stands for a token at all (an app's address, a token's pet name or CID). */
const tokenOf = (ref: string, names: PetNames): Token | undefined => {
  const address = APP_ADDRESS.exec(ref);
  if (address) return asToken(address[1]);
  const named = names.get(ref);
  if (named) return named.kind === 'token' ? asToken(named.id) : undefined;
  return isToken(ref) ? (ref as Token) : undefined;
};

/** A closure this home's store holds, or a one-line refusal naming what `ref` was. */
const closureHere = async (blocks: ReturnType<typeof openFsBlockStore>, token: Token, ref: string): Promise<Closure> => {
  let bytes: Uint8Array;
  try {
    bytes = await blocks.get(parseCid(token, 'token'));
  } catch {
    throw new UsageError(`${quote(ref)} is no token this home issued: grid run takes an app published here (grid app publish)`, 'ERR_NOT_AN_APP');
  }
  return readClosure(token, bytes);
};

/** Print app `token`'s view of its document's current value. */
const runApp = async (inv: Invocation, blocks: ReturnType<typeof openFsBlockStore>, token: Token, ref: string): Promise<number> => {
  // Only a document's token is called: any other closure would be run with arguments it never asked for.
  const role = await closureHere(blocks, token, ref);
  if (role.code !== ROLE_MODULE_ID) throw new UsageError(`${quote(ref)} is a token, but not an app's: grid run takes an app's token or address (grid app publish prints them)`, 'ERR_NOT_AN_APP');
  return withHome(inv, async (home) => {
    const target = { token };
    const info = await callDoc(inv, home, target, ['info']);
    if (info.status !== 'fulfilled') return printOutcome(inv, info);
    const reducer = (info.value as { reducer: string }).reducer;
    const app = appOfEnv((await closureHere(blocks, asToken(reducer), reducer)).env);
    if (!app) throw new UsageError(`${quote(ref)} is a document's token, not an app's: its reducer describes no app (grid doc show prints its value)`, 'ERR_NOT_AN_APP');
    const read = await callDoc(inv, home, target, []);
    if (read.status !== 'fulfilled') return printOutcome(inv, read);
    const { version, value } = read.value as { version: string; value: GridValue };
    const view = await home.call(app.view, [value]);
    if (view.status !== 'fulfilled') {
      if (view.status === 'revoked') inv.io.err(`the app's view refused (${view.code}): ${view.reason}`);
      return printOutcome(inv, view);
    }
    inv.io.out(inv.json ? toJsonText({ title: app.title, version, value, view: view.value }) : renderUiText(view.value));
    return EXIT.ok;
  });
};

export const runCommand = (session: Session) =>
  verb(
    session,
    'run',
    'run a WASI command module or a JS module\'s main export (a file, CID or pet name; ARGs after -- are passed as they are), or print an app\'s view (its token, pet name or address)',
    (c) =>
      c
        .argument('<module>', 'a module file, CID or pet name; or an app\'s token, pet name or address')
        .argument('[args...]', 'the command\'s arguments')
        .option('--clock', 'let the command read the clock')
        .option('--random', 'let the command read random bytes'),
    async (inv, [moduleRef, commandArgs], opts) => {
      const ref = moduleRef as string;
      const args = commandArgs as string[];
      const paths = homePaths(inv.home);
      const blocks = openFsBlockStore(paths.blocks);
      const names = existsSync(ref) ? undefined : await PetNames.open(paths.names);
      const appToken = names && tokenOf(ref, names);
      if (appToken) {
        if (args.length > 0) throw new UsageError('an app takes no arguments: its changes go through its document (grid doc apply)');
        return runApp(inv, blocks, appToken, ref);
      }
      const bytes = names ? await moduleBytes(names, blocks, ref) : await readModuleFile(ref);
      if (moduleKindOf(bytes) === 'wasm') {
        return runWasiCommand(bytes, { args, clock: opts.clock === true, random: opts.random === true, maxPages: DEFAULT_LIMITS.wasmMaxPages });
      }
      return withHome(
        inv,
        async (home) => {
          const token = await home.issue({ code: await home.publish(bytes), export: 'main' });
          return printOutcome(inv, await home.call(token, args, { follow: true }));
        },
        { analyzes: true },
      );
    },
  );
