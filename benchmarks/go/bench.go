// Go channels in the benchmark matrix. Producers and consumers are
// goroutines (GOMAXPROCS defaults to the number of CPUs), which is how Go
// programs use channels; the C++ and Rust peers use OS threads. Same rows,
// counts and CSV output: row,flavor,peer,run,value,unit.
//
// Go has no unbounded channel, so no unbounded row is measured here (the
// table shows n/a, as crossbeam's suite does for Go). Go has select, so the
// select_rx and select_both rows are measured as in crossbeam's go.go.
package main

import (
	"fmt"
	"os"
	"reflect"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

type config struct {
	messages, small, runs, capN, rtts, burst, idle int
	only                                           string   // --only ROW: rows starting with ROW
	rows                                           []string // --rows A,B,C: rows named exactly so
}

// Rows to run: all, or those starting with --only, or those named in --rows
// (exact names; both given: both must hold).
func wanted(c config, row string) bool {
	if c.only != "" && !strings.HasPrefix(row, c.only) {
		return false
	}
	if len(c.rows) == 0 {
		return true
	}
	for _, r := range c.rows {
		if r == row {
			return true
		}
	}
	return false
}

// The flavors Go can express; "unbounded" has no Go equivalent.
var flavors = []string{"bounded0", "bounded1", "boundedN"}

const threads = 4 // producers (and consumers for select_both), as in crossbeam's suite

func capFor(c config, f string) int {
	switch f {
	case "bounded0":
		return 0
	case "bounded1":
		return 1
	default:
		return c.capN
	}
}

func countFor(c config, f string) int {
	if f == "bounded0" || f == "bounded1" {
		return c.small
	}
	return c.messages
}

func report(row, fl string, run int, v float64, unit string) {
	fmt.Printf("%s,%s,go,%d,%.3f,%s\n", row, fl, run, v, unit)
}

func progress(row, fl string) { fmt.Fprintf(os.Stderr, "  %-10s %-14s %s\n", "go", row, fl) }

func seq(c config, f string) float64 {
	n := countFor(c, f)
	t0 := time.Now() // creation is timed too, as in crossbeam's suite
	ch := make(chan int, capFor(c, f))
	for i := 0; i < n; i++ {
		ch <- i
	}
	inOrder := true
	for i := 0; i < n; i++ {
		inOrder = inOrder && <-ch == i
	}
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	check(inOrder, "seq received messages out of order")
	return ns
}

// lifecycle: make a channel, send one message, receive it, drop the
// channel; K = messages/10 channels (at least 1), ns per channel. One
// goroutine: the buffer holds the message. Every make(chan) is a heap
// allocation (runtime.makechan), so the garbage collector's work of
// reclaiming the dropped channels is part of the figure, as Go's "destroy".
func lifecycle(c config, capacity int) float64 {
	k := c.messages / 10
	if k < 1 {
		k = 1
	}
	t0 := time.Now()
	for i := 0; i < k; i++ {
		ch := make(chan int, capacity)
		ch <- i
		if <-ch != i {
			check(false, "lifecycle received a wrong value")
		}
	}
	return float64(time.Since(t0).Nanoseconds()) / float64(k)
}

// check: every workload checks what it received; a mismatch fails the program.
func check(ok bool, what string) {
	if !ok {
		fmt.Fprintf(os.Stderr, "CHECK FAILED: go: %s\n", what)
		os.Exit(3)
	}
}

// mpscRun sends mk(i) from each producer; val(msg) feeds the received-sum check.
func mpscRun[T any](c config, f string, producers int, mk func(int) T, val func(T) int) float64 {
	n := countFor(c, f) / producers * producers
	t0 := time.Now() // creation is timed too, as in crossbeam's suite
	ch := make(chan T, capFor(c, f))
	var wg sync.WaitGroup
	for p := 0; p < producers; p++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < n/producers; i++ {
				ch <- mk(i)
			}
		}()
	}
	sum := 0
	for i := 0; i < n; i++ {
		sum += val(<-ch)
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	expected := 0
	for i := 0; i < n/producers; i++ {
		expected += val(mk(i))
	}
	check(sum == expected*producers, "mpsc received a wrong sum")
	return ns
}

// selectRx: 4 producers, each on its own channel; one consumer selects over
// the 4 receivers.
func selectRx(c config, f string) float64 {
	n := countFor(c, f) / threads * threads
	t0 := time.Now()
	var chans [threads]chan int
	for i := range chans {
		chans[i] = make(chan int, capFor(c, f))
	}
	var wg sync.WaitGroup
	for _, ch := range chans {
		wg.Add(1)
		go func(ch chan int) {
			defer wg.Done()
			for i := 0; i < n/threads; i++ {
				ch <- i
			}
		}(ch)
	}
	sum := 0
	for i := 0; i < n; i++ {
		select {
		case v := <-chans[0]:
			sum += v
		case v := <-chans[1]:
			sum += v
		case v := <-chans[2]:
			sum += v
		case v := <-chans[3]:
			sum += v
		}
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	per := n / threads
	check(sum == threads*(per*(per-1)/2), "select_rx received a wrong sum")
	return ns
}

// selectBoth: 4 producers each select a send over the 4 channels, 4
// consumers each select a receive over them.
func selectBoth(c config, f string) float64 {
	n := countFor(c, f) / threads * threads
	t0 := time.Now()
	var chans [threads]chan int
	for i := range chans {
		chans[i] = make(chan int, capFor(c, f))
	}
	var wg sync.WaitGroup
	var sums [threads]int // one per consumer; read after wg.Wait
	for t := 0; t < threads; t++ {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := 0; i < n/threads; i++ {
				select {
				case chans[0] <- i:
				case chans[1] <- i:
				case chans[2] <- i:
				case chans[3] <- i:
				}
			}
		}()
		go func(t int) {
			defer wg.Done()
			local := 0 // summed locally: no false sharing between consumers
			for i := 0; i < n/threads; i++ {
				select {
				case v := <-chans[0]:
					local += v
				case v := <-chans[1]:
					local += v
				case v := <-chans[2]:
					local += v
				case v := <-chans[3]:
					local += v
				}
			}
			sums[t] = local
		}(t)
	}
	wg.Wait()
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	per := n / threads
	check(sums[0]+sums[1]+sums[2]+sums[3] == threads*(per*(per-1)/2), "select_both received a wrong sum")
	return ns
}

// selectArms: the cost of one select over n arms, one goroutine: n channels
// of capacity 1, each step sends one message to channel k (spread over all
// n) and selects over all n receives with reflect.Select, Go's only select
// over a list built at run time. Exactly one case is ready.
func selectArms(c config, arms int) float64 {
	n := c.messages / 10 // fewer over many arms: at most messages*16/arms, as bench_sluice.cpp
	if m := c.messages * 16 / arms; m < n {
		n = m
	}
	if n < 1 {
		n = 1
	}
	chans := make([]chan int, arms)
	cases := make([]reflect.SelectCase, arms)
	for k := range chans {
		chans[k] = make(chan int, 1)
		cases[k] = reflect.SelectCase{Dir: reflect.SelectRecv, Chan: reflect.ValueOf(chans[k])}
	}
	sum, rightArm := 0, true
	t0 := time.Now()
	for i := 0; i < n; i++ {
		k := (i * 7919) % arms // a prime stride: every channel in turn
		chans[k] <- i
		won, v, _ := reflect.Select(cases)
		rightArm = rightArm && won == k
		sum += int(v.Int())
	}
	ns := float64(time.Since(t0).Nanoseconds()) / float64(n)
	check(rightArm && sum == n*(n-1)/2, "select_arms: a wrong arm or sum")
	return ns
}

func pingPong(c config, f string) []float64 {
	n := c.rtts
	a := make(chan int, capFor(c, f))
	b := make(chan int, capFor(c, f))
	go func() {
		for i := 0; i < n; i++ {
			b <- <-a
		}
	}()
	rtt := make([]float64, n)
	echoed := true
	for i := 0; i < n; i++ {
		t0 := time.Now()
		a <- i
		echoed = echoed && <-b == i
		rtt[i] = float64(time.Since(t0).Nanoseconds())
	}
	check(echoed, "ping-pong echoed a wrong value")
	sort.Float64s(rtt)
	return rtt
}

// pingPongRows reports p50 and p99 round trips on both hand-off flavors.
func pingPongRows(c config, row string) {
	if !wanted(c, row) {
		return
	}
	for _, f := range []string{"bounded0", "bounded1"} {
		progress(row, f)
		for r := 0; r < c.runs; r++ {
			rtt := pingPong(c, f)
			report(row+"_p50", f, r, rtt[len(rtt)/2], "ns/rtt")
			report(row+"_p99", f, r, rtt[len(rtt)*99/100], "ns/rtt")
		}
	}
}

func repeat(c config, row, fl, unit string, m func() float64) {
	if !wanted(c, row) {
		return
	}
	progress(row, fl)
	for r := 0; r < c.runs; r++ {
		report(row, fl, r, m(), unit)
	}
}

func rss() float64 {
	b, err := os.ReadFile("/proc/self/statm")
	if err != nil {
		return 0
	}
	var size, res float64
	fmt.Sscan(string(b), &size, &res)
	return res * 4096
}

func memory(c config, mode string) {
	var ms runtime.MemStats
	switch mode {
	case "empty":
		for _, f := range flavors {
			capacity := capFor(c, f)
			name := f
			if f == "boundedN" {
				capacity, name = 1024, "bounded1024"
			}
			const k = 1000
			keep := make([]chan int, k)
			runtime.GC()
			runtime.ReadMemStats(&ms)
			before := ms.HeapAlloc
			for i := range keep {
				keep[i] = make(chan int, capacity)
			}
			runtime.ReadMemStats(&ms)
			report("mem_empty", name, 0, float64(ms.HeapAlloc-before)/k, "bytes")
			runtime.KeepAlive(keep)
		}
	case "idle":
		keep := make([]chan int, c.idle)
		before := rss()
		for i := range keep {
			keep[i] = make(chan int, 1024)
		}
		report("mem_idle_x100k", "bounded1024", 0, (rss()-before)/float64(c.idle), "bytes/chan")
		runtime.KeepAlive(keep)
	}
}

func main() {
	c := config{messages: 500000, small: 10000, runs: 5, rtts: 5000, burst: 10000000, idle: 100000}
	for _, a := range os.Args[1:] {
		switch a {
		case "--smoke":
			c = config{messages: 2000, small: 200, runs: 1, rtts: 200, burst: 100000, idle: 1000}
		case "--full":
			c.messages, c.small, c.runs, c.rtts = 1000000, 50000, 7, 20000
		}
	}
	// Overrides after the mode: --messages N, --only ROW, --rows A,B,C.
	for i := 1; i+1 < len(os.Args); i++ {
		switch os.Args[i] {
		case "--messages":
			c.messages, _ = strconv.Atoi(os.Args[i+1])
			c.small = c.messages / 20
			if c.small < 1 {
				c.small = 1
			}
		case "--only":
			c.only = os.Args[i+1]
		case "--rows":
			for _, r := range strings.Split(os.Args[i+1], ",") {
				if r != "" {
					c.rows = append(c.rows, r)
				}
			}
		}
	}
	c.capN = c.messages
	for i, a := range os.Args {
		if a == "--memory" && i+1 < len(os.Args) {
			memory(c, os.Args[i+1])
			return
		}
	}
	for _, a := range os.Args[1:] {
		if a == "--pinned" { // run under `taskset -c 0`: only the pinned ping-pong rows
			pingPongRows(c, "pingpong_pinned")
			return
		}
	}
	ident := func(i int) int { return i }
	for _, f := range flavors {
		if f == "boundedN" {
			repeat(c, "seq", f, "ns/msg", func() float64 { return seq(c, f) })
		}
		repeat(c, "spsc", f, "ns/msg", func() float64 { return mpscRun(c, f, 1, ident, ident) })
		repeat(c, "mpsc", f, "ns/msg", func() float64 { return mpscRun(c, f, threads, ident, ident) })
		repeat(c, "select_rx", f, "ns/msg", func() float64 { return selectRx(c, f) })
		repeat(c, "select_both", f, "ns/msg", func() float64 { return selectBoth(c, f) })
	}
	for _, arms := range []int{2, 8, 64, 1024} {
		repeat(c, fmt.Sprintf("select_arms_%d", arms), "bounded1", "ns/select", func() float64 {
			return selectArms(c, arms)
		})
	}
	pingPongRows(c, "pingpong")
	for _, p := range []int{1, 4, 16, 64} {
		repeat(c, fmt.Sprintf("mpsc_x%d", p), "boundedN", "ns/msg", func() float64 {
			return mpscRun(c, "boundedN", p, ident, ident)
		})
	}
	repeat(c, "payload_8B", "boundedN", "ns/msg", func() float64 {
		return mpscRun(c, "boundedN", 1, func(i int) [8]byte { return [8]byte{byte(i)} }, func(v [8]byte) int { return int(v[0]) })
	})
	repeat(c, "payload_64B", "boundedN", "ns/msg", func() float64 {
		return mpscRun(c, "boundedN", 1, func(i int) [64]byte { return [64]byte{byte(i)} }, func(v [64]byte) int { return int(v[0]) })
	})
	repeat(c, "payload_1KiB", "boundedN", "ns/msg", func() float64 {
		return mpscRun(c, "boundedN", 1, func(i int) [1024]byte { return [1024]byte{byte(i)} }, func(v [1024]byte) int { return int(v[0]) })
	})
	// No unbounded channel in Go, and no bounded0 (a rendezvous cannot hold
	// the one message without a second goroutine).
	repeat(c, "lifecycle", "bounded1", "ns/chan", func() float64 { return lifecycle(c, 1) })
	repeat(c, "lifecycle", "bounded1024", "ns/chan", func() float64 { return lifecycle(c, 1024) })
}
