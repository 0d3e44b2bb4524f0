// A shared counter, one app of two modules: this one gives `init` and
// `view`, examples/wasm/counter.wasm gives `update` and `merge` (each export
// comes from the first module, in the order given, that has it).
//
//   grid app publish examples/counter.js examples/wasm/counter.wasm --name counter
//   grid run counter                      # the view, as text
//   grid doc apply counter.write 5        # a step, as a button would send it

export const init = () => 0;

export const view = (ctx, count) => [
  'main', { class: 'counter' },
  ['h1', {}, 'Counter'],
  ['p', { class: 'count', 'aria-live': 'polite' }, String(count)],
  ['button', { on: { click: -1 } }, '−1'], ' ',
  ['button', { on: { click: 1 } }, '+1'], ' ',
  ['button', { on: { click: 10 } }, '+10'],
];
