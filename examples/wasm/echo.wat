;; A WASI command: prints each argument on its own line, then exits with the
;; number of arguments. With no arguments it copies stdin to stdout. With
;; "clock" as its only argument it instead exits with the errno of reading
;; the clock (76, not capable, unless granted).
(module
  (import "wasi_snapshot_preview1" "args_sizes_get" (func $args_sizes_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "args_get" (func $args_get (param i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $fd_write (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_read" (func $fd_read (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock_time_get (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $proc_exit (param i32)))
  (memory (export "memory") 1)
  (data (i32.const 8) "\n")
  ;; 0: argc, 4: argv buffer size, 16: iovec, 64: argv pointers, 1024: argv strings
  (func $strlen (param $p i32) (result i32) (local $n i32)
    (block $done (loop $next
      (br_if $done (i32.eqz (i32.load8_u (i32.add (local.get $p) (local.get $n)))))
      (local.set $n (i32.add (local.get $n) (i32.const 1)))
      (br $next)))
    (local.get $n))
  (func $write (param $ptr i32) (param $len i32)
    (i32.store (i32.const 16) (local.get $ptr))
    (i32.store (i32.const 20) (local.get $len))
    (drop (call $fd_write (i32.const 1) (i32.const 16) (i32.const 1) (i32.const 24))))
  (func $is_clock (param $p i32) (result i32)
    (i32.and (i32.eq (i32.load (local.get $p)) (i32.const 0x636f6c63))
             (i32.and (i32.eq (i32.load8_u (i32.add (local.get $p) (i32.const 4))) (i32.const 0x6b))
                      (i32.eqz (i32.load8_u (i32.add (local.get $p) (i32.const 5)))))))
  ;; stdin to stdout through a 4 KiB buffer at 8192; the read count lands at 40
  (func $cat
    (block $eof (loop $more
      (i32.store (i32.const 48) (i32.const 8192))
      (i32.store (i32.const 52) (i32.const 4096))
      (br_if $eof (call $fd_read (i32.const 0) (i32.const 48) (i32.const 1) (i32.const 40)))
      (br_if $eof (i32.eqz (i32.load (i32.const 40))))
      (call $write (i32.const 8192) (i32.load (i32.const 40)))
      (br $more))))
  (func (export "_start") (local $i i32) (local $arg i32)
    (drop (call $args_sizes_get (i32.const 0) (i32.const 4)))
    (drop (call $args_get (i32.const 64) (i32.const 1024)))
    (if (i32.and (i32.eq (i32.load (i32.const 0)) (i32.const 2)) (call $is_clock (i32.load (i32.const 68))))
      (then (call $proc_exit (call $clock_time_get (i32.const 0) (i64.const 1) (i32.const 32)))))
    (if (i32.eq (i32.load (i32.const 0)) (i32.const 1))
      (then (call $cat) (call $proc_exit (i32.const 0))))
    (local.set $i (i32.const 1))
    (block $done (loop $next
      (br_if $done (i32.ge_u (local.get $i) (i32.load (i32.const 0))))
      (local.set $arg (i32.load (i32.add (i32.const 64) (i32.mul (local.get $i) (i32.const 4)))))
      (call $write (local.get $arg) (call $strlen (local.get $arg)))
      (call $write (i32.const 8) (i32.const 1))
      (local.set $i (i32.add (local.get $i) (i32.const 1)))
      (br $next)))
    (call $proc_exit (i32.sub (i32.load (i32.const 0)) (i32.const 1)))))
