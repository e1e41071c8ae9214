package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A progress draws a progress bar on a terminal as bytes are written to it,
// at most ten times a second, and a last time with done.
type progress struct {
	w     io.Writer
	total int64 // -1 when unknown
	start time.Time

	mu   sync.Mutex
	n    int64
	last time.Time
}

func newProgress(w io.Writer, total int64) *progress {
	return &progress{w: w, total: total, start: time.Now()}
}

func (p *progress) Write(b []byte) (int, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n += int64(len(b))
	if now := time.Now(); now.Sub(p.last) >= 100*time.Millisecond {
		p.last = now
		p.draw(now)
	}
	return len(b), nil
}

// done draws the bar a last time and ends its line.
func (p *progress) done() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw(time.Now())
	fmt.Fprintln(p.w)
}

func (p *progress) draw(now time.Time) {
	rate := ""
	if secs := now.Sub(p.start).Seconds(); secs > 0 {
		rate = size(int64(float64(p.n)/secs)) + "/s"
	}
	if p.total <= 0 {
		fmt.Fprintf(p.w, "\r%10s  %12s ", size(p.n), rate)
		return
	}
	const width = 30
	frac := min(float64(p.n)/float64(p.total), 1)
	full := int(frac * width)
	bar := strings.Repeat("=", full)
	if full < width {
		bar += ">" + strings.Repeat(" ", width-full-1)
	}
	fmt.Fprintf(p.w, "\r%3.0f%% [%s] %s / %s  %s ", frac*100, bar, size(p.n), size(p.total), rate)
}

// size formats n bytes in binary units.
func size(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// group formats n with thousands separators: 1,234,567.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	for i := len(s) - 3; i > 0; i -= 3 {
		s = s[:i] + "," + s[i:]
	}
	if neg {
		s = "-" + s
	}
	return s
}
