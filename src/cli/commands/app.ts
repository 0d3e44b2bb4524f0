/**
 * `grid app`: applications by URL (DESIGN.md §5, README: Applications by
 * URL). `publish` makes an app of modules: it publishes them, creates the
 * app's document (its reducer the app's `update`, its first merge step the
 * app's `merge` if it has one, its value `init`'s) and prints the address
 * a browser opens it at, a read-only one, and one that settles conflicts.
 * The settle address is printed apart rather than folded into the first:
 * settling overrules everyone's edits, a power the document's owner hands
 * to whom it chooses (a settle page shows the document and its conflicts,
 * and changes nothing else). The admin token, which also rewrites the
 * rules, is printed only with --json.
 */
import { Command } from 'commander';
import { basename } from 'node:path';
import { quote, type ModuleId } from '../../interface/ids.js';
import { appEnv, AppError, exportsOf, MAX_TITLE, pickExports } from '../../apps/app.js';
import { assertPetName } from '../../home/names.js';
import { toJsonText, UsageError } from '../format.js';
import { withHome } from '../home-ops.js';
import { EXIT, list, repeatable, text, verb, withGlobalOptions, type Session } from '../invocation.js';
import { readModuleFile, setName } from '../resolve.js';
import { initOf, resolveStep, ROLES, roleNames } from './doc.js';

/** The node's web address from its WebSocket URL (the page and the app routes share its port). */
const webBase = (nodeUrl: string): string => {
  const url = new URL(nodeUrl);
  return `${url.protocol === 'wss:' ? 'https:' : 'http:'}//${url.host}`;
};

const publishVerb = (session: Session) =>
  verb(
    session,
    'publish',
    'make an application of modules (JS and WebAssembly mixed): publish them, create its document, print its address (and a read-only one, and one that settles conflicts)',
    (c) =>
      c
        .argument('<file...>', 'module files; each of init, update, view and merge is taken from the first that exports it')
        .option('--name <pet>', 'name the document\'s tokens as `grid doc create --name` does: PET (admin), PET.read, PET.write, PET.settle')
        .option('--merge <step>', 'further merge steps after the app\'s own merge: json, union, text, FILE#export, CID#export, a token or a pet name (repeatable)', repeatable)
        .option('--title <text>', 'what the app page is titled (default: the first file\'s name)')
        .option('--force', 'take the pet names even if they name something else'),
    async (inv, [files], opts) => {
      const paths = files as string[];
      const pet = text(opts.name);
      const pets = pet === undefined ? undefined : roleNames(pet);
      if (pets) for (const name of Object.values(pets)) assertPetName(name);
      const title = text(opts.title) ?? basename(paths[0]!).replace(/\.(m?js|wasm)$/i, '');
      if (title.length === 0 || title.length > MAX_TITLE) throw new UsageError(`--title is 1 to ${MAX_TITLE} characters (got ${title.length})`);
      // Everything is read and checked before anything is published or named: a bad file leaves the home as it was.
      const modules: Array<{ label: string; bytes: Uint8Array; exports: readonly string[] }> = [];
      for (const file of paths) {
        const bytes = await readModuleFile(file);
        try {
          modules.push({ label: basename(file), bytes, exports: await exportsOf(bytes) });
        } catch (error) {
          throw new UsageError(`${file}: ${(error as Error).message}`, (error as { code?: string }).code ?? 'ERR_BAD_MODULE');
        }
      }
      let picked: ReturnType<typeof pickExports<(typeof modules)[number]>>;
      try {
        picked = pickExports(modules);
      } catch (error) {
        if (error instanceof AppError) throw new UsageError(error.message, error.code);
        throw error;
      }
      return withHome(
        inv,
        async (home, names) => {
          if (pets && opts.force !== true) {
            for (const name of Object.values(pets)) {
              const existing = names.get(name);
              if (existing) throw new UsageError(`${quote(name)} already names ${existing.kind} ${existing.id}; add --force to give the name to the new app's token`, 'ERR_NAME_TAKEN');
            }
          }
          const cids = new Map<(typeof modules)[number], ModuleId>();
          for (const module of modules) cids.set(module, (await home.publish(module.bytes)) as ModuleId);
          const cidOf = (name: 'init' | 'update' | 'view' | 'merge') => cids.get(picked[name]!)!;
          const init = await initOf(home, cidOf('init'));
          // Replicas (a tab node's among them) run the view, the reducer and the merge themselves: all are replicable.
          const view = await home.issue({ code: cidOf('view'), export: 'view', replicable: true });
          const reducer = await home.issue({ code: cidOf('update'), export: 'update', replicable: true, env: appEnv({ title, modules: [...new Set(cids.values())], view }) });
          const merges: string[] = [];
          if (picked.merge) merges.push(await home.issue({ code: cidOf('merge'), export: 'merge', replicable: true }));
          for (const step of list(opts.merge)) merges.push(await resolveStep(home, names, step));
          const tokens = await home.createDocument({ reducer, merges, init });
          if (pets) for (const role of ROLES) await setName(names, pets[role], tokens[role], true);
          const base = home.nodeUrl ? webBase(home.nodeUrl) : undefined;
          const address = (token: string) => `${base ?? ''}/app/${token}`;
          if (inv.json) {
            inv.io.out(toJsonText({ app: address(tokens.write), readOnly: address(tokens.read), settling: address(tokens.settle), doc: tokens.doc, read: tokens.read, write: tokens.write, settle: tokens.settle, admin: tokens.admin, view, modules: [...cids.values()] }));
          } else {
            inv.io.out([address(tokens.write), `read-only: ${address(tokens.read)}`, `settle conflicts: ${address(tokens.settle)}`].join('\n'));
          }
          if (!base) inv.io.err('no node runs on this home: `grid start` serves the app at http://ADDRESS/app/… (ADDRESS as it prints)');
          return EXIT.ok;
        },
        { analyzes: true },
      );
    },
  );

/** `grid app VERB …`. */
export const appCommand = (session: Session): Command =>
  withGlobalOptions(new Command('app')).description('applications by URL: modules exporting init, update, view (and merge) over a document').addCommand(publishVerb(session));
