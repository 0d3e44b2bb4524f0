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
import { callCommand } from './commands/call.js';
import { delegateCommand } from './commands/delegate.js';
import { docCommand } from './commands/doc.js';
import { gcCommand } from './commands/gc.js';
import { proposeCommand, voteCommand } from './commands/govern.js';
import { graphCommand } from './commands/graph.js';
import { initCommand } from './commands/init.js';
import { inspectCommand } from './commands/inspect.js';
import { inviteCommand, joinCommand } from './commands/invite.js';
import { issueCommand } from './commands/issue.js';
import { nameCommand, namesCommand } from './commands/names.js';
import { pendingCommand } from './commands/pending.js';
import { publishCommand } from './commands/publish.js';
import { replCommand } from './commands/repl.js';
import { repairCommand } from './commands/repair.js';
import { reputationCommand } from './commands/reputation.js';
import { revokeCommand } from './commands/revoke.js';
import { runCommand } from './commands/run.js';
import { startCommand } from './commands/start.js';
import { webCommand } from './commands/web.js';

declare const getStackString: (error: Error) => string;

export { EXIT, type Io } from './invocation.js';

const VERSION = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

/** The verbs, in the order `grid --help` lists them. */
const VERBS: ReadonlyArray<(session: Session) => Command> = [
  initCommand,
  publishCommand,
  issueCommand,
  callCommand,
  revokeCommand,
  graphCommand,
  reputationCommand,
  namesCommand,
  nameCommand,
  inspectCommand,
  runCommand,
  delegateCommand,
  pendingCommand,
  docCommand,
  proposeCommand,
  voteCommand,
  replCommand,
  repairCommand,
  gcCommand,
  startCommand,
  webCommand,
  inviteCommand,
  joinCommand,
];

const trimNewline = (s: string) => s.replace(/\n$/, '');

/** The program for one run of `main`: commander commands are stateful, so each run builds its own. */
const buildProgram = (session: Session, seen: { verb?: Command }): Command => {
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
  for (const make of VERBS) {
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
    await buildProgram(session, seen).parseAsync(argv, { from: 'user' });
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
