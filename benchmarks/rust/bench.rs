// Rust's std::sync::mpsc in the benchmark matrix (crossbeam-channel's
// algorithms since Rust 1.67). Same rows, counts and CSV output as the C++
// peers: row,flavor,peer,run,value,unit. Built with `rustc -O`, std only.
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::Instant;

struct Counting;
static HEAP: AtomicUsize = AtomicUsize::new(0);
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, l: Layout) -> *mut u8 {
        HEAP.fetch_add(l.size(), Ordering::Relaxed);
        System.alloc(l)
    }
    unsafe fn dealloc(&self, p: *mut u8, l: Layout) {
        HEAP.fetch_sub(l.size(), Ordering::Relaxed);
        System.dealloc(p, l)
    }
}
#[global_allocator]
static GLOBAL: Counting = Counting;

#[derive(Clone, Copy, PartialEq)]
enum Flavor { Unbounded, Bounded0, Bounded1, BoundedN }
fn fname(f: Flavor) -> &'static str {
    match f { Flavor::Unbounded => "unbounded", Flavor::Bounded0 => "bounded0", Flavor::Bounded1 => "bounded1", Flavor::BoundedN => "boundedN" }
}

#[derive(Clone)]
struct Config { messages: usize, small: usize, runs: usize, cap_n: usize, rtts: usize, burst: usize, idle: usize, only: String, rows: Vec<String> }

// Rows to run: all, or those starting with --only (for looking at one row),
// or those named in --rows A,B,C (exact names; both given: both must hold).
fn wanted(c: &Config, row: &str) -> bool {
    (c.only.is_empty() || row.starts_with(c.only.as_str())) && (c.rows.is_empty() || c.rows.iter().any(|r| r == row))
}

enum Tx<T> { U(mpsc::Sender<T>), B(mpsc::SyncSender<T>) }
impl<T> Clone for Tx<T> { fn clone(&self) -> Self { match self { Tx::U(s) => Tx::U(s.clone()), Tx::B(s) => Tx::B(s.clone()) } } }
impl<T> Tx<T> { fn send(&self, v: T) { match self { Tx::U(s) => s.send(v).unwrap(), Tx::B(s) => s.send(v).unwrap() } } }

fn make<T>(f: Flavor, c: &Config) -> (Tx<T>, mpsc::Receiver<T>) {
    match f {
        Flavor::Unbounded => { let (t, r) = mpsc::channel(); (Tx::U(t), r) }
        Flavor::Bounded0 => { let (t, r) = mpsc::sync_channel(0); (Tx::B(t), r) }
        Flavor::Bounded1 => { let (t, r) = mpsc::sync_channel(1); (Tx::B(t), r) }
        Flavor::BoundedN => { let (t, r) = mpsc::sync_channel(c.cap_n); (Tx::B(t), r) }
    }
}
fn count_for(c: &Config, f: Flavor) -> usize { if f == Flavor::Bounded0 || f == Flavor::Bounded1 { c.small } else { c.messages } }
fn report(row: &str, fl: &str, run: usize, v: f64, unit: &str) { println!("{},{},rust-std,{},{:.3},{}", row, fl, run, v, unit); }
fn progress(row: &str, fl: &str) { eprintln!("  {:<10} {:<14} {}", "rust-std", row, fl); }

fn seq(c: &Config, f: Flavor) -> f64 {
    let n = count_for(c, f);
    let t0 = Instant::now(); // creation is timed too, as in crossbeam's suite
    let (tx, rx) = make::<usize>(f, c);
    for i in 0..n { tx.send(i); }
    let mut in_order = true;
    for i in 0..n { in_order &= rx.recv().unwrap() == i; }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    check(in_order, "seq received messages out of order");
    ns
}

// lifecycle: make a channel, send one message, receive it, drop both ends;
// K = messages/10 channels (at least 1), ns per channel. bounded1024 is
// BoundedN at capacity 1024.
fn lifecycle(c: &Config, f: Flavor) -> f64 {
    let k = (c.messages / 10).max(1);
    let one = Config { cap_n: 1024, ..c.clone() };
    let t0 = Instant::now();
    for i in 0..k {
        let (tx, rx) = make::<usize>(f, &one);
        tx.send(i);
        check(rx.recv().unwrap() == i, "lifecycle received a wrong value");
    } // tx and rx dropped here, every iteration
    t0.elapsed().as_nanos() as f64 / k as f64
}

// Every workload checks what it received; a mismatch fails the program.
fn check(ok: bool, what: &str) {
    if !ok { eprintln!("CHECK FAILED: rust-std: {}", what); std::process::exit(3); }
}

// Sends mk(i) from each producer; val(&msg) feeds the received-sum check.
fn mpsc_run<T: Send + 'static>(c: &Config, f: Flavor, producers: usize, mk: fn(usize) -> T, val: fn(&T) -> usize) -> f64 {
    let n = count_for(c, f) / producers * producers;
    let t0 = Instant::now(); // creation is timed too, as in crossbeam's suite
    let (tx, rx) = make::<T>(f, c);
    let mut hs = Vec::new();
    for _ in 0..producers {
        let tx = tx.clone();
        hs.push(thread::spawn(move || for i in 0..n / producers { tx.send(mk(i)); }));
    }
    drop(tx);
    let mut sum = 0usize;
    for _ in 0..n { sum = sum.wrapping_add(val(&rx.recv().unwrap())); }
    for h in hs { h.join().unwrap(); }
    let ns = t0.elapsed().as_nanos() as f64 / n as f64;
    let expected = (0..n / producers).fold(0usize, |a, i| a.wrapping_add(val(&mk(i)))).wrapping_mul(producers);
    check(sum == expected, "mpsc received a wrong sum");
    ns
}

#[cfg(target_os = "linux")]
fn pin_cpu0() {
    // sched_setaffinity(0, sizeof(cpu_set_t), {cpu 0}) without the libc crate.
    extern "C" { fn sched_setaffinity(pid: i32, size: usize, mask: *const u64) -> i32; }
    let mut mask = [0u64; 16];
    mask[0] = 1;
    unsafe { sched_setaffinity(0, std::mem::size_of_val(&mask), mask.as_ptr()); }
}

fn ping_pong(c: &Config, f: Flavor, pinned: bool) -> Vec<f64> {
    let n = c.rtts;
    let (atx, arx) = make::<usize>(f, c);
    let (btx, brx) = make::<usize>(f, c);
    let echo = thread::spawn(move || {
        if pinned { pin_cpu0(); }
        for _ in 0..n { let v = arx.recv().unwrap(); btx.send(v); }
    });
    let mut rtt = Vec::with_capacity(n);
    let mut echoed = true;
    for i in 0..n {
        let t0 = Instant::now();
        atx.send(i);
        echoed &= brx.recv().unwrap() == i;
        rtt.push(t0.elapsed().as_nanos() as f64);
    }
    echo.join().unwrap();
    check(echoed, "ping-pong echoed a wrong value");
    rtt.sort_by(|a, b| a.partial_cmp(b).unwrap());
    rtt
}

fn rss() -> f64 {
    let s = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let v: Vec<f64> = s.split_whitespace().filter_map(|x| x.parse().ok()).collect();
    v.get(1).copied().unwrap_or(0.0) * 4096.0
}

fn repeat(c: &Config, row: &str, fl: &str, unit: &str, mut m: impl FnMut() -> f64) {
    if !wanted(c, row) { return; }
    progress(row, fl);
    for r in 0..c.runs { report(row, fl, r, m(), unit); }
}

fn memory(c: &Config, mode: &str) {
    match mode {
        "empty" => {
            for f in [Flavor::Unbounded, Flavor::Bounded0, Flavor::Bounded1, Flavor::BoundedN] {
                let one = Config { cap_n: 1024, ..c.clone() };
                let before = HEAP.load(Ordering::Relaxed);
                let ch = make::<usize>(f, &one);
                let after = HEAP.load(Ordering::Relaxed);
                report("mem_empty", if f == Flavor::BoundedN { "bounded1024" } else { fname(f) }, 0, (after - before) as f64, "bytes");
                drop(ch);
            }
        }
        "idle" => {
            let mut keep = Vec::with_capacity(c.idle);
            let before = rss();
            for _ in 0..c.idle { keep.push(mpsc::sync_channel::<usize>(1024)); }
            report("mem_idle_x100k", "bounded1024", 0, (rss() - before) / c.idle as f64, "bytes/chan");
        }
        "burst" => {
            let (tx, rx) = mpsc::channel::<usize>();
            let before = rss();
            for i in 0..c.burst { tx.send(i).unwrap(); }
            let peak = rss();
            for _ in 0..c.burst { rx.recv().unwrap(); }
            let after = rss();
            report("mem_burst_peak", "unbounded", 0, peak - before, "bytes");
            report("mem_burst_after_drain", "unbounded", 0, after - before, "bytes");
        }
        _ => {}
    }
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let mut c = Config { messages: 500_000, small: 10_000, runs: 5, cap_n: 0, rtts: 5_000, burst: 10_000_000, idle: 100_000, only: String::new(), rows: Vec::new() };
    if args.iter().any(|a| a == "--smoke") { c = Config { messages: 2_000, small: 200, runs: 1, cap_n: 0, rtts: 200, burst: 100_000, idle: 1_000, only: String::new(), rows: Vec::new() }; }
    if args.iter().any(|a| a == "--full") { c.messages = 1_000_000; c.small = 50_000; c.runs = 7; c.rtts = 20_000; }
    // Overrides after the mode: --messages N, --only ROW, --rows A,B,C.
    if let Some(i) = args.iter().position(|a| a == "--messages") { c.messages = args[i + 1].parse().unwrap(); c.small = (c.messages / 20).max(1); }
    if let Some(i) = args.iter().position(|a| a == "--only") { c.only = args[i + 1].clone(); }
    if let Some(i) = args.iter().position(|a| a == "--rows") { c.rows = args[i + 1].split(',').filter(|r| !r.is_empty()).map(String::from).collect(); }
    c.cap_n = c.messages;
    if let Some(i) = args.iter().position(|a| a == "--memory") { memory(&c, &args[i + 1]); return; }

    for f in [Flavor::Unbounded, Flavor::Bounded0, Flavor::Bounded1, Flavor::BoundedN] {
        if f == Flavor::Unbounded || f == Flavor::BoundedN { repeat(&c, "seq", fname(f), "ns/msg", || seq(&c, f)); }
        repeat(&c, "spsc", fname(f), "ns/msg", || mpsc_run(&c, f, 1, |i| i, |v| *v));
        repeat(&c, "mpsc", fname(f), "ns/msg", || mpsc_run(&c, f, 4, |i| i, |v| *v));
    }
    for f in [Flavor::Bounded0, Flavor::Bounded1] {
        for pinned in [false, true] {
            let row = if pinned { "pingpong_pinned" } else { "pingpong" };
            if !wanted(&c, row) { continue; }
            progress(row, fname(f));
            for r in 0..c.runs {
                let rtt = if pinned {
                    let cc = c.clone();
                    thread::spawn(move || { pin_cpu0(); ping_pong(&cc, f, true) }).join().unwrap()
                } else { ping_pong(&c, f, false) };
                report(&format!("{}_p50", row), fname(f), r, rtt[rtt.len() / 2], "ns/rtt");
                report(&format!("{}_p99", row), fname(f), r, rtt[rtt.len() * 99 / 100], "ns/rtt");
            }
        }
    }
    for f in [Flavor::Unbounded, Flavor::BoundedN] {
        for p in [1usize, 4, 16, 64] {
            repeat(&c, &format!("mpsc_x{}", p), fname(f), "ns/msg", || mpsc_run(&c, f, p, |i| i, |v| *v));
        }
    }
    repeat(&c, "payload_8B", "boundedN", "ns/msg", || mpsc_run(&c, Flavor::BoundedN, 1, |i| [i as u8; 8], |v| v[0] as usize));
    repeat(&c, "payload_64B", "boundedN", "ns/msg", || mpsc_run(&c, Flavor::BoundedN, 1, |i| [i as u8; 64], |v| v[0] as usize));
    repeat(&c, "payload_1KiB", "boundedN", "ns/msg", || mpsc_run(&c, Flavor::BoundedN, 1, |i| [i as u8; 1024], |v| v[0] as usize));
    // No bounded0: a rendezvous cannot hold the one message without a second thread.
    for (f, fl) in [(Flavor::Unbounded, "unbounded"), (Flavor::Bounded1, "bounded1"), (Flavor::BoundedN, "bounded1024")] {
        repeat(&c, "lifecycle", fl, "ns/chan", || lifecycle(&c, f));
    }
}
