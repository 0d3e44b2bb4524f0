/**
 * `grid`, the command line. The perimeter is established first; every
 * command then opens the home — or, when `grid start` is running a node on
 * it, goes through that node — does one thing, and exits with the code
 * README.md lists (the CLI tour): 0 fulfilled or done, 1 usage or input error, 3 revoked,
 * 4 unreachable or timed out. Errors are one line on stderr; `--debug` adds
 * the stack.
 *
 * The words are parsed by commander; each verb is defined in its own file
 * under ./commands/, the plumbing they share in ./invocation.ts (exit codes,
 * output), ./home-ops.ts (reaching a home) and ./resolve.ts (names).
 */
import '../perimeter/lockdown.js';
import { readFileSync } from 'node:fs';
import { Command, CommanderError } from 'commander';
import { quote } from '../interface/ids.js';
import { toJsonText } from './format.js';
import { EXIT, UnreachableError, withGlobalOptions, type Io, type Session } from './invocation.js';

declare const getStackString: (error: Error) => string;

export { EXIT, type Io } from './invocation.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/**
 * The verbs, in the order `grid --help` lists them: each its name and how
 * to load it. A run loads only the verb it names (`grid start` need not
 * load the REPL, the WebAssembly runner and twenty other verbs: ~0.1 s of
 * every start here); help, a verb it does not know (suggestions) or none
 * loads them all.
 */
const VERBS: ReadonlyArray<readonly [name: string, load: () => Promise<(session: Session) => Command>]> = [
  ['init', async () => (await import('./commands/init.js')).initCommand],
  ['publish', async () => (await import('./commands/publish.js')).publishCommand],
  ['issue', async () => (await import('./commands/issue.js')).issueCommand],
  ['call', async () => (await import('./commands/call.js')).callCommand],
  ['revoke', async () => (await import('./commands/revoke.js')).revokeCommand],
  ['graph', async () => (await import('./commands/graph.js')).graphCommand],
  ['reputation', async () => (await import('./commands/reputation.js')).reputationCommand],
  ['names', async () => (await import('./commands/names.js')).namesCommand],
  ['name', async () => (await import('./commands/names.js')).nameCommand],
  ['inspect', async () => (await import('./commands/inspect.js')).inspectCommand],
  ['run', async () => (await import('./commands/run.js')).runCommand],
  ['delegate', async () => (await import('./commands/delegate.js')).delegateCommand],
  ['pending', async () => (await import('./commands/pending.js')).pendingCommand],
  ['doc', async () => (await import('./commands/doc.js')).docCommand],
  ['app', async () => (await import('./commands/app.js')).appCommand],
  ['propose', async () => (await import('./commands/govern.js')).proposeCommand],
  ['vote', async () => (await import('./commands/govern.js')).voteCommand],
  ['repl', async () => (await import('./commands/repl.js')).replCommand],
  ['repair', async () => (await import('./commands/repair.js')).repairCommand],
  ['gc', async () => (await import('./commands/gc.js')).gcCommand],
  ['start', async () => (await import('./commands/start.js')).startCommand],
  ['web', async () => (await import('./commands/web.js')).webCommand],
  ['invite', async () => (await import('./commands/invite.js')).inviteCommand],
  ['join', async () => (await import('./commands/invite.js')).joinCommand],
];

const trimNewline = (s: string) => s.replace(/\n$/, '');

/** The program for one run of `main`: commander commands are stateful, so each run builds its own. */
/**
 * The verb `argv` names, if it is one: its first word that is neither an
 * option nor `--home`'s value (the program's options: --home DIR, --json,
 * --debug, --help, --version). Undefined for anything else, or after `--`.
 */
const namedVerb = (argv: readonly string[]): (typeof VERBS)[number] | undefined => {
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--') return undefined;
    if (arg === '--home') i += 1;
    else if (!arg.startsWith('-')) return VERBS.find(([name]) => name === arg);
  }
  return undefined;
};

const buildProgram = (session: Session, seen: { verb?: Command }, verbs: ReadonlyArray<(session: Session) => Command>): Command => {
  const program = withGlobalOptions(new Command('grid'))
    .description('PromiseGrid: content-addressed code, capability tokens, screened delegation, an auditable promise graph.')
    .version(VERSION, '-V, --version', 'print the version')
    // Program options stop at the verb; each verb takes the global options
    // itself, so they work after it too and `--` keeps its meaning.
    .enablePositionalOptions()
    .showSuggestionAfterError(true)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => session.io.out(trimNewline(s)),
      writeErr: (s) => session.io.err(trimNewline(s)),
      // Parse errors are reported by `main`, in one line.
      outputError: () => {},
    })
    .addHelpText(
      'after',
      [
        '',
        'The home is --home DIR, else $GRID_HOME, else ~/.promisegrid.',
        'Exit codes: 0 fulfilled or done, 1 usage or input error, 3 revoked, 4 unreachable or timed out.',
        'Run `grid VERB --help` for a verb\'s arguments and options.',
      ].join('\n'),
    )
    .hook('preSubcommand', (_program, verb) => {
      seen.verb = verb;
    });
  for (const make of verbs) {
    const command = make(session).copyInheritedSettings(program);
    // A verb with verbs of its own (`grid doc create`): they parse and report errors as the program does.
    for (const sub of command.commands) sub.copyInheritedSettings(command);
    if (command.commands.length > 0) command.hook('preSubcommand', (_verb, sub) => void (seen.verb = sub));
    program.addCommand(command);
  }
  return program;
};

/** A parse error as one line, naming what is wrong in the verb's own words. */
const explainParseError = (error: CommanderError, verb: Command | undefined): string => {
  const message = error.message.replace(/^error: /, '').replace(/\s*\(Did you mean (.+)\?\)\s*$/, ' (did you mean $1?)');
  const quoted = /'([^']*)'/.exec(message)?.[1] ?? '';
  // A verb's own verb is named with it: `doc create`.
  const name = verb ? (verb.parent?.parent ? `${verb.parent.name()} ${verb.name()}` : verb.name()) : '';
  const help = verb ? `run \`grid ${name} --help\`` : 'run `grid --help`';
  const upper = (flags: string) => flags.replace(/<([^>]+)>|\[([^\]]+)\]/g, (_m, a?: string, b?: string) => (a ?? b ?? '').toUpperCase());
  switch (error.code) {
    case 'commander.unknownCommand':
      return `${message.replace(`'${quoted}'`, quote(quoted))}; ${help}`;
    case 'commander.unknownOption':
      // The wording the CLI has always used.
      return `Unknown option '${quoted}'${message.includes('(did you mean') ? ` ${message.slice(message.indexOf('(did you mean'))}` : ''}; ${help}`;
    case 'commander.missingArgument': {
      const argument = verb?.registeredArguments.find((a) => a.name() === quoted);
      return `${name} needs ${argument?.variadic ? 'at least one ' : ''}${quoted.toUpperCase()}`;
    }
    case 'commander.missingMandatoryOptionValue':
      return `${name} needs ${upper(quoted)}`;
    case 'commander.optionMissingArgument':
      return `${upper(quoted)}: the option is missing its value`;
    case 'commander.excessArguments': {
      const n = verb?.registeredArguments.length ?? 0;
      return `${name} takes ${n === 0 ? 'no arguments' : `${n} argument${n === 1 ? '' : 's'}`}; usage: grid ${name} ${verb?.usage() ?? ''}`;
    }
    default:
      return message.split('\n')[0]!;
  }
};

/** Help and the version were printed; these are not errors. */
const SHOWN = new Set(['commander.helpDisplayed', 'commander.help', 'commander.version']);

/** Run the CLI; returns the exit code. Exported for tests and embedding. */
export const main = async (argv: string[], io: Io, env: NodeJS.ProcessEnv = process.env): Promise<number> => {
  const session: Session = { io, env, code: EXIT.ok };
  const seen: { verb?: Command } = {};
  const debug = argv.includes('--debug');
  try {
    const named = namedVerb(argv);
    const verbs = await Promise.all((named ? [named] : VERBS).map(([, load]) => load()));
    await buildProgram(session, seen, verbs).parseAsync(argv, { from: 'user' });
    return session.code;
  } catch (error) {
    if (error instanceof CommanderError && SHOWN.has(error.code)) return error.exitCode;
    const message =
      error instanceof CommanderError ? explainParseError(error, seen.verb) : (error instanceof Error ? error.message : String(error)).split('\n')[0]!;
    io.err(`grid: ${message}`);
    if (argv.includes('--json')) io.out(toJsonText({ error: message, code: error instanceof CommanderError ? 'ERR_USAGE' : ((error as { code?: unknown })?.code ?? 'ERR_USAGE') }));
    // Under lockdown `error.stack` is hidden from ordinary code; SES gives the
    // perimeter `getStackString` to read it.
    if (debug && error instanceof Error && !(error instanceof CommanderError)) io.err(getStackString(error) || error.stack || '(no stack)');
    return error instanceof UnreachableError ? EXIT.unreachable : EXIT.usage;
  }
};
