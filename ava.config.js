export default {
  files: ['test/**/*.test.ts'],
  extensions: { ts: 'module' },
  // The module parser is loaded before lockdown under tsx (see test/_preload.mjs).
  nodeArguments: ['--import=./test/_preload.mjs', '--import=tsx'],
  workerThreads: false,
  timeout: '60s',
};
