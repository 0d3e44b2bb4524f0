;; Greatest common divisor of two i64s, a numeric WebAssembly closure:
;; `grid issue gcd.wasm --export gcd`, then `grid call gcd 9223372036854775807 6`.
;; Arguments must fit an i64 exactly (-2^63 … 2^63-1); the answer is exact too.
(module
  (func (export "gcd") (param $a i64) (param $b i64) (result i64)
    (local $t i64)
    (block $done
      (loop $euclid
        (br_if $done (i64.eqz (local.get $b)))
        (local.set $t (i64.rem_s (local.get $a) (local.get $b)))
        (local.set $a (local.get $b))
        (local.set $b (local.get $t))
        (br $euclid)))
    (if (result i64) (i64.lt_s (local.get $a) (i64.const 0))
      (then (i64.sub (i64.const 0) (local.get $a)))
      (else (local.get $a)))))
