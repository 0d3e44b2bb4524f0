;; A shared counter's reducer and merge, numeric WebAssembly closures. With
;; examples/counter.js (its init and view) it is one app of two modules, JS
;; and WebAssembly mixed: each export is taken from the first module that
;; has it (README: Applications by URL).
;;
;;   grid app publish examples/counter.js examples/wasm/counter.wasm --name counter
;;
;; A change is a step from -100 to 100, added to the count; anything else
;; traps, which refuses the change. Concurrent steps merge by adding both:
;; ours + theirs - base.
(module
  (func (export "update") (param $count i32) (param $step i32) (result i32)
    (if (i32.gt_u (i32.add (local.get $step) (i32.const 100)) (i32.const 200))
      (then unreachable))
    (i32.add (local.get $count) (local.get $step)))
  (func (export "merge") (param $base i32) (param $ours i32) (param $theirs i32) (result i32)
    (i32.sub (i32.add (local.get $ours) (local.get $theirs)) (local.get $base))))
