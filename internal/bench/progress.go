package bench

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
)

// ProgressBar shows a bench's progress: a bar redrawn in place
// on a terminal, otherwise one line as each run starts.
type ProgressBar struct {
	w        io.Writer
	label    string
	tty      bool
	runs     int
	mu       sync.Mutex
	scenario string
	run      int
	drawn    bool
}

// NewProgressBar returns a bar for w: redrawn in place on a terminal,
// one line per run (prefixed with label) otherwise.
func NewProgressBar(w io.Writer, label string, runs int) *ProgressBar {
	return &ProgressBar{w: w, label: label, tty: IsTerminal(w), runs: runs}
}

const barWidth = 30

// Update is an Options.Progress.
func (p *ProgressBar) Update(scenario string, run, done, total int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	fresh := scenario != p.scenario || run != p.run
	p.scenario, p.run = scenario, run
	if !p.tty {
		if fresh {
			fmt.Fprintf(p.w, "%s: %s run %d/%d\n", p.label, scenario, run, p.runs)
		}
		return
	}
	if fresh && p.drawn {
		fmt.Fprintln(p.w)
	}
	frac := 0.0
	if total > 0 {
		frac = float64(done) / float64(total)
	}
	n := int(frac * barWidth)
	fmt.Fprintf(p.w, "\r%-15s run %d/%d [%s%s] %3.0f%%", scenario, run, p.runs,
		strings.Repeat("#", n), strings.Repeat(".", barWidth-n), frac*100)
	p.drawn = true
}

// Finish ends the bar's line.
func (p *ProgressBar) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty && p.drawn {
		fmt.Fprintln(p.w)
	}
}

// IsTerminal reports whether f (a reader or writer) is an interactive
// terminal.
func IsTerminal(f any) bool {
	file, ok := f.(*os.File)
	if !ok {
		return false
	}
	st, err := file.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
