/**
 * `grid doc`: documents — shared state that changes only through its
 * reducer, merges by its cascade, and sends what the cascade cannot merge to
 * a person (DESIGN.md §4). `create` is an owner operation; every other verb
 * is a call on one of the document's tokens (a CID, a pet name or a grid
 * URL, a delegated one included), screened and journaled like any call.
 */
import { Command } from 'commander';
import { quote, type Token } from '../../interface/ids.js';
import type { GridValue } from '../../closures/values.js';
import type { Outcome } from '../../interface/outcome.js';
import type { ConflictView, DocumentTokens } from '../../docs/documents.js';
import { renderConflicts, renderLogDot, renderLogMermaid, renderLogText, shortCid, type LogEntry } from '../../docs/render.js';
import { homePaths } from '../../home/home.js';
import { assertPetName, PetNames } from '../../home/names.js';
import { DEFAULT_LIMITS, REMOTE_GRACE_MS } from '../../kernel/kernel.js';
import { parseDuration, parseJsonArg, toJsonText, UsageError } from '../format.js';
import type { DocumentSpec } from '../../docs/api.js';
import { quorumFromWire, type Quorum } from '../../docs/governance.js';
import { connectAsHome, withHome, type HomeOps } from '../home-ops.js';
import { EXIT, list, printOutcome, repeatable, text, UNREACHABLE_CODES, verb, withGlobalOptions, type Invocation, type Session } from '../invocation.js';
import { isCid, isPathLike, nearest, resolveModule, resolveTarget, setName } from '../resolve.js';

/** Merge steps a document names by word: the shipped JSON and union merges, and the native text merge. */
export const SHIPPED_STEPS: readonly string[] = ['json', 'union', 'text'];
export const ROLES = ['read', 'write', 'settle', 'admin'] as const;
/** The pet names `--name PET` gives: the admin token (it does everything) is PET, the others PET.read, PET.write, PET.settle. */
export const roleNames = (pet: string): Record<(typeof ROLES)[number], string> => ({ admin: pet, read: `${pet}.read`, write: `${pet}.write`, settle: `${pet}.settle` });
const LOG_FORMATS = ['text', 'json', 'dot', 'mermaid'];
/** Most versions one `log` answers (the document part's own bound). */
const MAX_LOG = 1000;
/** Shortest prefix (or suffix) of a CID taken for the whole: past the `bafyrei` every version shares. */
const MIN_PREFIX = 10;
const MIN_SUFFIX = 6;
/** Revocations that mean this home's node could not answer a grid URL's token: it is asked where the URL says. */
export const ASK_ELSEWHERE = new Set(['unknown-token', 'unreachable']);

/** A refused outcome in one line with its code (with --json, the outcome as JSON instead, as `grid call` prints it); exit 3, or 4 when no answer came. */
const printRefusal = (inv: Invocation, outcome: Outcome & { status: 'revoked' }): number => {
  if (inv.json) inv.io.out(toJsonText(outcome));
  else inv.io.err(`revoked (${outcome.code}): ${outcome.reason}`);
  return UNREACHABLE_CODES.has(outcome.code) ? EXIT.unreachable : EXIT.revoked;
};

/** Print a fulfilled value with `print`; anything else as a refusal (or as `grid call` prints a further promise). */
const printWith = (inv: Invocation, outcome: Outcome, print: (value: GridValue) => void): number => {
  if (outcome.status === 'revoked') return printRefusal(inv, outcome);
  if (outcome.status !== 'fulfilled') return printOutcome(inv, outcome);
  print(outcome.value);
  return EXIT.ok;
};

/** A `{ version, value }` answer (apply, show, resolve): the value, or with `--json` both. */
const printVersioned = (inv: Invocation, outcome: Outcome): number =>
  printWith(inv, outcome, (answer) => {
    const { version, value } = answer as { version: string; value: GridValue };
    inv.io.out(toJsonText(inv.json ? { version, value } : value));
  });

/** A document token given as a CID, a pet name or a grid URL: its token, chain and where to reach it. */
export const docTarget = async (inv: Invocation, ref: string) => resolveTarget(ref, await PetNames.open(homePaths(inv.home).names));

/**
 * Call a document token with `args` on this home (its node or its kernel);
 * a grid URL's token this home's node does not hold is called where the URL
 * says, as this home's principal.
 */
export const callDoc = async (inv: Invocation, home: HomeOps, target: Awaited<ReturnType<typeof docTarget>>, args: readonly GridValue[]): Promise<Outcome> => {
  const chain = target.chain ? { chain: target.chain } : {};
  const outcome = await home.call(target.token, args, chain);
  if (!(outcome.status === 'revoked' && ASK_ELSEWHERE.has(outcome.code) && target.via && target.via !== home.nodeUrl)) return outcome;
  const remote = await connectAsHome(inv, target.via);
  try {
    return await remote.call(target.token, args, { ...chain, timeoutMs: DEFAULT_LIMITS.callTimeoutMs + REMOTE_GRACE_MS });
  } finally {
    remote.close();
  }
};

/**
 * A version, conflict or head given in full, or as `grid doc log` and
 * `grid doc conflicts` show it (`bafyreiabcde…uvwxyz`), or as a prefix or
 * suffix long enough to tell it from the others in `candidates`.
 */
export const expandCid = (word: string, candidates: readonly string[], what: string): string => {
  if (candidates.includes(word)) return word;
  const ellipsis = word.indexOf('…');
  const matches =
    ellipsis >= 0
      ? candidates.filter((c) => c.startsWith(word.slice(0, ellipsis)) && c.endsWith(word.slice(ellipsis + 1)))
      : candidates.filter((c) => (word.length >= MIN_PREFIX && c.startsWith(word)) || (word.length >= MIN_SUFFIX && c.endsWith(word)));
  if (matches.length === 1) return matches[0]!;
  if (matches.length > 1) throw new UsageError(`${quote(word)} could be any of ${matches.length} ${what}s (${matches.map(shortCid).join(', ')}): give more of it`, 'ERR_AMBIGUOUS');
  if (isCid(word)) return word;
  throw new UsageError(`${quote(word)} is no ${what} of this document${candidates.length ? ` (${candidates.map(shortCid).join(', ')})` : ''}`, 'ERR_NO_SUCH_VERSION');
};

const asList = <T>(outcome: Outcome): T[] => (outcome.status === 'fulfilled' && Array.isArray(outcome.value) ? (outcome.value as unknown as T[]) : []);

/** A merge step's word as the document's genesis takes it: a shipped step's name, or a closure's token. */
export const resolveStep = async (home: HomeOps, names: PetNames, step: string): Promise<string> => {
  if (SHIPPED_STEPS.includes(step)) return step;
  const hash = step.lastIndexOf('#');
  if (hash > 0) {
    const exportName = step.slice(hash + 1);
    if (!exportName) throw new UsageError(`--merge ${quote(step)} names no export after '#': write FILE#export or CID#export`);
    const code = await resolveModule(home, names, step.slice(0, hash));
    // Every replica runs the step to check and make merges: it is replicable.
    return home.issue({ code, export: exportName, replicable: true });
  }
  if (isPathLike(step)) throw new UsageError(`--merge ${quote(step)}: name the export that merges, as ${step}#merge`);
  if (!names.get(step) && !step.startsWith('grid://') && !isCid(step)) {
    const near = nearest(step, [...SHIPPED_STEPS, ...names.list().map(([name]) => name)]);
    throw new UsageError(`--merge ${quote(step)} is no merge step: give json, union, text, FILE#export, CID#export, a token or a pet name${near ? ` (did you mean ${quote(near)}?)` : ''}`, 'ERR_NO_SUCH_STEP');
  }
  const target = resolveTarget(step, names);
  if (target.chain) await home.importChain(target.token, target.chain);
  return target.token;
};

/** The value of module `code`'s `init` export, called with no arguments. */
export const initOf = async (home: HomeOps, code: string): Promise<GridValue> => {
  let token: Token;
  try {
    token = await home.issue({ code, export: 'init' });
  } catch (error) {
    const { code: errorCode, message } = error as { code?: unknown; message?: string };
    if (errorCode === 'ERR_NO_EXPORT' || /has no export "init"/.test(message ?? '')) {
      throw new UsageError(`module ${code} has no export "init": give the initial value with --init JSON`, 'ERR_NO_INIT');
    }
    throw error;
  }
  const outcome = await home.call(token, []);
  if (outcome.status !== 'fulfilled') {
    throw new UsageError(`the module's init gave no initial value (${outcome.status === 'revoked' ? `revoked (${outcome.code}): ${outcome.reason}` : 'a further promise'}); give it with --init JSON`, 'ERR_NO_INIT');
  }
  return outcome.value;
};

/** What a document token says of its document: its id, reducer, cascade and governance. */
const infoOf = async (inv: Invocation, home: HomeOps, ref: string): Promise<Record<string, GridValue>> => {
  const outcome = await callDoc(inv, home, await docTarget(inv, ref), ['info']);
  if (outcome.status !== 'fulfilled') throw new UsageError(`--members ${ref}: not a document this home can read (${outcome.status === 'revoked' ? `${outcome.code}: ${outcome.reason}` : 'a further promise'})`, 'ERR_NOT_A_DOCUMENT');
  return outcome.value as Record<string, GridValue>;
};

const createVerb = (session: Session) =>
  verb(
    session,
    'create',
    'make a document over a module\'s reducer; print its tokens by role (doc, read, write, settle, admin)',
    (c) =>
      c
        .argument('<module>', 'a module file (published on the way), CID or pet name')
        .requiredOption('--reducer <export>', 'the export that applies a change: (ctx, state, change) → state')
        .option('--merge <step>', 'a merge cascade step, tried in the order given: json, union, text, FILE#export, CID#export, a token or a pet name (repeatable)', repeatable)
        .option('--init <json>', 'the initial value (without it, the module\'s `init` export is called)')
        .option('--name <pet>', 'name the admin token PET and the others PET.read, PET.write, PET.settle')
        .option('--force', 'take the pet names even if they name something else')
        .option('--members <doc>', 'govern it: it changes only by proposal, voted on by the members the document DOC lists (a token or pet name of it, or `self`: its own value lists them)')
        .option('--quorum <rule>', 'what carries a proposal: majority (the default), unanimity, or a number of members')
        .option('--weighted', 'weigh each member\'s vote by its reputation on this node')
        .option('--deadline <duration>', 'how long a proposal stays open (default 7d)'),
    async (inv, [moduleRef], opts) => {
      const initText = text(opts.init);
      const given = initText === undefined ? undefined : (parseJsonArg(initText, '--init') as GridValue);
      const steps = list(opts.merge);
      const pet = text(opts.name);
      const membersRef = text(opts.members);
      if (membersRef === undefined && (opts.quorum !== undefined || opts.weighted !== undefined || opts.deadline !== undefined)) {
        throw new UsageError('--quorum, --weighted and --deadline govern a document: give its members with --members DOC|self');
      }
      const quorumText = text(opts.quorum) ?? 'majority';
      let quorum: Quorum;
      try {
        quorum = quorumFromWire(/^\d+$/.test(quorumText) ? Number(quorumText) : quorumText);
      } catch (error) {
        throw new UsageError(`--quorum: ${(error as Error).message}`);
      }
      const deadlineMs = parseDuration(text(opts.deadline) ?? '7d', '--deadline');
      const pets = pet === undefined ? undefined : roleNames(pet);
      if (pets) for (const name of Object.values(pets)) assertPetName(name);
      return withHome(inv, async (home, names) => {
        if (pets && opts.force !== true) {
          // All four names are free, or none is taken: no document left half named.
          for (const name of Object.values(pets)) {
            const existing = names.get(name);
            if (existing) throw new UsageError(`${quote(name)} already names ${existing.kind} ${existing.id}; add --force to give the name to the new document's token`, 'ERR_NAME_TAKEN');
          }
        }
        const code = await resolveModule(home, names, moduleRef as string);
        const init = given === undefined ? await initOf(home, code) : given;
        // Replicas replay every version through the reducer: it is replicable.
        const reducer = await home.issue({ code, export: opts.reducer as string, replicable: true });
        const merges: string[] = [];
        for (const step of steps) merges.push(await resolveStep(home, names, step));
        let governance: DocumentSpec['governance'];
        if (membersRef !== undefined) {
          const members = membersRef === 'self' ? 'self' : ((await infoOf(inv, home, membersRef)).doc as string);
          governance = { members, quorum, weighted: opts.weighted === true, deadlineMs };
        }
        const tokens: DocumentTokens = await home.createDocument({ reducer, merges, init, ...(governance ? { governance } : {}) });
        if (pets) for (const role of ROLES) await setName(names, pets[role], tokens[role], true);
        if (inv.json) inv.io.out(toJsonText({ doc: tokens.doc, read: tokens.read, write: tokens.write, settle: tokens.settle, admin: tokens.admin }));
        else inv.io.out([`doc     ${tokens.doc}`, ...ROLES.map((role) => `${role.padEnd(7)} ${tokens[role]}${pets ? `  ${pets[role]}` : ''}`)].join('\n'));
        return EXIT.ok;
      }, { analyzes: true });
    },
  );

const applyVerb = (session: Session) =>
  verb(
    session,
    'apply',
    'apply a change through the reducer (a write, or admin, token); print the new value',
    (c) => c.argument('<doc>', 'a document token: CID, pet name or grid:// URL').argument('<change>', 'the change, as JSON'),
    async (inv, [ref, changeText]) => {
      const change = parseJsonArg(changeText as string, 'CHANGE') as GridValue;
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home) => printVersioned(inv, await callDoc(inv, home, target, ['apply', change])));
    },
  );

const showVerb = (session: Session) =>
  verb(
    session,
    'show',
    'print the document\'s current value, or its value at a version',
    (c) => c.argument('<doc>', 'a document token: CID, pet name or grid:// URL').option('--at <version>', 'a version (as `grid doc log` shows it, or in full)'),
    async (inv, [ref], opts) => {
      const at = text(opts.at);
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home) => {
        let args: GridValue[] = [];
        if (at !== undefined) {
          const versions = isCid(at) ? [] : asList<LogEntry>(await callDoc(inv, home, target, ['log', { limit: MAX_LOG }])).map((entry) => entry.version);
          args = ['at', expandCid(at, versions, 'version')];
        }
        return printVersioned(inv, await callDoc(inv, home, target, args));
      });
    },
  );

const logVerb = (session: Session) =>
  verb(
    session,
    'log',
    'the document\'s versions, newest first: text, json, or the version DAG as dot or mermaid',
    (c) =>
      c
        .argument('<doc>', 'a document token: CID, pet name or grid:// URL')
        .option('--format <format>', 'text, json, dot or mermaid', 'text')
        .option('--limit <n>', `at most this many versions (at most ${MAX_LOG})`, '100'),
    async (inv, [ref], opts) => {
      const format = inv.json ? 'json' : (text(opts.format) ?? 'text');
      if (!LOG_FORMATS.includes(format)) throw new UsageError(`--format must be text, json, dot or mermaid (got ${quote(format)})`);
      const limitText = text(opts.limit) ?? '100';
      const limit = Number(limitText);
      if (!(Number.isSafeInteger(limit) && limit > 0 && limit <= MAX_LOG)) throw new UsageError(`--limit takes a whole number from 1 to ${MAX_LOG} (got ${quote(limitText)})`);
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home, names) => {
        const name = (id: string) => names.nameOf(id) ?? shortCid(id);
        return printWith(inv, await callDoc(inv, home, target, ['log', { limit }]), (value) => {
          const entries = value as unknown as LogEntry[];
          const complete = entries.length < limit;
          if (format === 'json') inv.io.out(toJsonText({ versions: entries }));
          else if (format === 'dot') inv.io.out(renderLogDot(entries, name, complete));
          else if (format === 'mermaid') inv.io.out(renderLogMermaid(entries, name, complete));
          else inv.io.out(renderLogText(entries, name));
        });
      });
    },
  );

const conflictsVerb = (session: Session) =>
  verb(
    session,
    'conflicts',
    'the open conflicts of one document (through its token), or of every document this home holds',
    (c) => c.argument('[doc]', 'a document token: CID, pet name or grid:// URL'),
    async (inv, [ref]) => {
      const target = ref === undefined ? undefined : await docTarget(inv, ref as string);
      return withHome(inv, async (home, names) => {
        const print = (views: readonly ConflictView[]) => inv.io.out(inv.json ? toJsonText({ conflicts: views }) : renderConflicts(views, (id) => names.nameOf(id) ?? shortCid(id)));
        if (!target) {
          print(await home.documentConflicts());
          return EXIT.ok;
        }
        // A document token answers its settled conflicts too: the open ones are listed.
        return printWith(inv, await callDoc(inv, home, target, ['conflicts']), (value) => print((value as unknown as ConflictView[]).filter((view) => view.settled === undefined)));
      });
    },
  );

const resolveVerb = (session: Session) =>
  verb(
    session,
    'resolve',
    'settle a conflict (a settle, or admin, token): pick one of its heads, or write the value; print the settled value',
    (c) =>
      c
        .argument('<doc>', 'a document token: CID, pet name or grid:// URL')
        .argument('<conflict>', 'the conflict, as `grid doc conflicts` shows it')
        .option('--pick <head>', 'keep the value of this head')
        .option('--value <json>', 'the settled value, as JSON'),
    async (inv, [ref, conflictWord], opts) => {
      const pick = text(opts.pick);
      const valueText = text(opts.value);
      if ((pick === undefined) === (valueText === undefined)) throw new UsageError('doc resolve takes one of --pick HEAD or --value JSON');
      const value = valueText === undefined ? undefined : (parseJsonArg(valueText, '--value') as GridValue);
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home) => {
        const open = asList<ConflictView>(await callDoc(inv, home, target, ['conflicts'])).filter((view) => view.settled === undefined);
        const conflict = expandCid(conflictWord as string, open.map((view) => view.conflict), 'open conflict');
        const heads = open.find((view) => view.conflict === conflict)?.heads ?? [];
        const choice: GridValue = pick === undefined ? { value: value! } : { pick: expandCid(pick, heads, 'head') };
        return printVersioned(inv, await callDoc(inv, home, target, ['resolve', conflict, choice]));
      });
    },
  );

/** A new reducer's word: FILE#export or CID#export (issued here, replicable), a token or a pet name of one. */
const resolveReducer = async (home: HomeOps, names: PetNames, ref: string): Promise<string> => {
  const hash = ref.lastIndexOf('#');
  if (hash > 0) {
    const exportName = ref.slice(hash + 1);
    if (!exportName) throw new UsageError(`--reducer ${quote(ref)} names no export after '#': write FILE#export or CID#export`);
    return home.issue({ code: await resolveModule(home, names, ref.slice(0, hash)), export: exportName, replicable: true });
  }
  if (isPathLike(ref)) throw new UsageError(`--reducer ${quote(ref)}: name the export that applies a change, as ${ref}#update`);
  if (!names.get(ref) && !ref.startsWith('grid://') && !isCid(ref)) throw new UsageError(`--reducer ${quote(ref)} is no reducer: give FILE#export, CID#export, a token or a pet name`, 'ERR_NO_SUCH_REDUCER');
  const target = resolveTarget(ref, names);
  if (target.chain) await home.importChain(target.token, target.chain);
  return target.token;
};

const adminVerb = (session: Session) =>
  verb(
    session,
    'admin',
    'propose new rules for a document (its admin token): a new reducer and/or merge cascade; print the proposal, a further promise its members (an ungoverned document\'s issuer alone) vote on',
    (c) =>
      c
        .argument('<doc>', 'the document\'s admin token: CID, pet name or grid:// URL')
        .option('--reducer <ref>', 'the new reducer: FILE#export, CID#export, a token or a pet name')
        .option('--merge <step>', 'the new merge cascade, a step at a time in order: json, union, text, FILE#export, CID#export, a token or a pet name (repeatable)', repeatable)
        .option('--no-merges', 'an empty cascade: every concurrent edit goes to a person'),
    async (inv, [ref], opts) => {
      const reducerRef = text(opts.reducer);
      const steps = list(opts.merge);
      const clear = opts.merges === false;
      if (clear && steps.length > 0) throw new UsageError('doc admin takes --merge STEP… or --no-merges, not both');
      if (reducerRef === undefined && steps.length === 0 && !clear) throw new UsageError('doc admin takes a new --reducer, a new cascade (--merge STEP…, or --no-merges), or both');
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home, names) => {
        const rules: Record<string, GridValue> = {};
        if (reducerRef !== undefined) rules.reducer = await resolveReducer(home, names, reducerRef);
        if (steps.length > 0 || clear) {
          const merges: string[] = [];
          for (const step of steps) merges.push(await resolveStep(home, names, step));
          rules.merges = merges;
        }
        const outcome = await callDoc(inv, home, target, ['rules', rules]);
        return outcome.status === 'revoked' ? printRefusal(inv, outcome) : printOutcome(inv, outcome);
      });
    },
  );

const followVerb = (session: Session) =>
  verb(
    session,
    'follow',
    'keep a replica of the document a delegated token reaches, synced with the peers whenever this home\'s node runs',
    (c) => c.argument('<doc>', 'a document token delegated to this home: CID, pet name or grid:// URL (its chain is imported)'),
    async (inv, [ref]) => {
      const target = await docTarget(inv, ref as string);
      return withHome(inv, async (home) => {
        if (target.chain) await home.importChain(target.token, target.chain);
        await home.followDocument(target.token);
        inv.io.out(inv.json ? toJsonText({ following: target.token }) : `following ${target.token}`);
        return EXIT.ok;
      });
    },
  );

/** `grid doc VERB …`: the document verbs under one word. */
export const docCommand = (session: Session): Command =>
  withGlobalOptions(new Command('doc'))
    .description('documents: shared state changed through a reducer, merged by a cascade, conflicts settled by people')
    .addCommand(createVerb(session))
    .addCommand(applyVerb(session))
    .addCommand(showVerb(session))
    .addCommand(logVerb(session))
    .addCommand(conflictsVerb(session))
    .addCommand(resolveVerb(session))
    .addCommand(adminVerb(session))
    .addCommand(followVerb(session));
