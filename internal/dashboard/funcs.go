package dashboard

import (
	"bytes"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/spoolq/spool"
)

func (d *Dashboard) funcs() template.FuncMap {
	return template.FuncMap{
		"secs":    secsText,
		"win":     winText,
		"dur":     func(v spool.Duration) string { return secsText(v.D().Seconds()) },
		"rate":    rateText,
		"num":     func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) },
		"ago":     d.ago,
		"agoP":    func(t *time.Time) string { return d.agoPtr(t) },
		"stamp":   func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05Z") },
		"count":   func(m map[spool.State]int64, s spool.State) int64 { return m[s] },
		"pretty":  prettyJSON,
		"spark":   sparkline,
		"chart":   chart,
		"derefI":  func(p *int) int { return *p },
		"derefB":  func(p *bool) bool { return p != nil && *p },
		"derefF":  func(p *float64) float64 { return *p },
		"deref64": func(p *int64) int64 { return *p },
		"lastErr": lastErr,
		"jobsURL": jobsURL,
		"esc":     url.PathEscape,
		"join":    strings.Join,
		"terminal": func(s spool.State) bool {
			return s.Terminal()
		},
		"retryable": func(s spool.State) bool { return s == spool.StateDead || s == spool.StateCancelled },
		"idsAttr":   func(ids []string) string { return strings.Join(ids, " ") },
		"pctOf": func(a, b int64) int64 {
			if b <= 0 {
				return 0
			}
			return a * 100 / b
		},
	}
}

// secsText formats seconds as a short duration.
func secsText(s float64) string {
	if s <= 0 || math.IsNaN(s) {
		return "0s"
	}
	d := time.Duration(s * float64(time.Second))
	switch {
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < time.Second:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	case d < time.Hour:
		return d.Round(time.Second).String()
	}
	return d.Round(time.Minute).String()
}

// winText names a window: "1 min", "5 min", "1 h".
func winText(v spool.Duration) string {
	d := v.D()
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " h"
	case d >= time.Minute && d%time.Minute == 0:
		return strconv.Itoa(int(d/time.Minute)) + " min"
	}
	return d.String()
}

// rateText formats a per-second rate.
func rateText(v float64) string {
	switch {
	case v == 0:
		return "0/s"
	case v < 0.1:
		return strconv.FormatFloat(v*60, 'g', 3, 64) + "/min"
	}
	return strconv.FormatFloat(v, 'g', 3, 64) + "/s"
}

func (d *Dashboard) ago(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	diff := d.now().Sub(t)
	switch {
	case diff < -time.Second:
		return "in " + secsText(-diff.Seconds())
	case diff < time.Second:
		return "now"
	}
	return secsText(diff.Seconds()) + " ago"
}

func (d *Dashboard) agoPtr(t *time.Time) string {
	if t == nil {
		return ""
	}
	return d.ago(*t)
}

// prettyJSON indents a JSON value for display.
func prettyJSON(b json.RawMessage) string {
	if len(b) == 0 {
		return ""
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		return string(b)
	}
	return out.String()
}

func lastErr(j *spool.Job) string {
	if n := len(j.Errors); n > 0 {
		return j.Errors[n-1].Error
	}
	return ""
}

// jobsURL links to the explorer with a queue and a state.
func jobsURL(queue string, state spool.State) string {
	v := url.Values{"queue": {queue}}
	if state != "" {
		v.Set("state", string(state))
	}
	return "/jobs?" + v.Encode()
}

// sparkline draws a series of the points as a small SVG line.
func sparkline(h *spool.StatsHistory, field string) template.HTML {
	if h == nil || len(h.Points) == 0 {
		return ""
	}
	vals := pointValues(h.Points, field)
	const w, ht = 120.0, 24.0
	hi := maxOf(vals)
	var b strings.Builder
	fmt.Fprintf(&b, `<svg class="spark" viewBox="0 0 %g %g" role="img" aria-label="%s over the last %s"><polyline class="s-line" points="`,
		w, ht, template.HTMLEscapeString(field), template.HTMLEscapeString(h.Span.D().String()))
	for i, v := range vals {
		x := w * float64(i) / math.Max(1, float64(len(vals)-1))
		y := ht - 2
		if hi > 0 {
			y = ht - 2 - (ht-4)*v/hi
		}
		fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
	}
	b.WriteString(`"/></svg>`)
	return template.HTML(b.String())
}

// chart draws up to three series of the points as an SVG line chart with
// its scale and time span.
func chart(h *spool.StatsHistory, title string, fields ...string) template.HTML {
	if h == nil || len(h.Points) == 0 {
		return ""
	}
	const w, ht, left, bottom = 600.0, 160.0, 44.0, 18.0
	series := make([][]float64, len(fields))
	hi := 0.0
	for i, f := range fields {
		series[i] = pointValues(h.Points, f)
		hi = math.Max(hi, maxOf(series[i]))
	}
	if hi == 0 {
		hi = 1
	}
	var b strings.Builder
	fmt.Fprintf(&b, `<figure class="chart"><figcaption>%s`, template.HTMLEscapeString(title))
	for i, f := range fields {
		fmt.Fprintf(&b, ` <span class="key k%d">%s</span>`, i, template.HTMLEscapeString(strings.ReplaceAll(f, "_", " ")))
	}
	fmt.Fprintf(&b, `</figcaption><svg viewBox="0 0 %g %g" role="img" aria-label="%s">`, w, ht, template.HTMLEscapeString(title))
	fmt.Fprintf(&b, `<line class="axis" x1="%g" y1="%g" x2="%g" y2="%g"/>`, left, ht-bottom, w, ht-bottom)
	fmt.Fprintf(&b, `<line class="grid" x1="%g" y1="4" x2="%g" y2="4"/>`, left, w)
	fmt.Fprintf(&b, `<text class="lbl" x="2" y="12">%s</text>`, template.HTMLEscapeString(shortNum(hi)))
	fmt.Fprintf(&b, `<text class="lbl" x="2" y="%g">0</text>`, ht-bottom)
	first, last := h.Points[0].At, h.Points[len(h.Points)-1].At
	fmt.Fprintf(&b, `<text class="lbl" x="%g" y="%g">%s</text>`, left, ht-4, first.UTC().Format("Jan 2 15:04"))
	fmt.Fprintf(&b, `<text class="lbl end" x="%g" y="%g">%s</text>`, w-2, ht-4, last.UTC().Format("15:04 UTC"))
	for i, vals := range series {
		fmt.Fprintf(&b, `<polyline class="c-line k%d" points="`, i)
		for j, v := range vals {
			x := left + (w-left)*float64(j)/math.Max(1, float64(len(vals)-1))
			y := ht - bottom - (ht-bottom-4)*v/hi
			fmt.Fprintf(&b, "%.1f,%.1f ", x, y)
		}
		b.WriteString(`"/>`)
	}
	b.WriteString(`</svg></figure>`)
	return template.HTML(b.String())
}

func shortNum(v float64) string {
	switch {
	case v >= 1e6:
		return strconv.FormatFloat(v/1e6, 'g', 3, 64) + "M"
	case v >= 1e3:
		return strconv.FormatFloat(v/1e3, 'g', 3, 64) + "k"
	}
	return strconv.FormatFloat(v, 'g', 3, 64)
}

// pointFields are the history series the charts may draw, by the JSON
// name of their field.
var pointFields = map[string]func(spool.StatsPoint) float64{
	"arrival_rate": func(p spool.StatsPoint) float64 { return p.ArrivalRate },
	"throughput":   func(p spool.StatsPoint) float64 { return p.Throughput },
	"avg_depth":    func(p spool.StatsPoint) float64 { return p.AvgDepth },
	"avg_busy":     func(p spool.StatsPoint) float64 { return p.AvgBusy },
	"wait_p95":     func(p spool.StatsPoint) float64 { return p.WaitP95 },
	"wait_mean":    func(p spool.StatsPoint) float64 { return p.WaitMean },
	"run_mean":     func(p spool.StatsPoint) float64 { return p.RunMean },
	"dead":         func(p spool.StatsPoint) float64 { return float64(p.Dead) },
	"retries":      func(p spool.StatsPoint) float64 { return float64(p.Retries) },
}

// pointValues is one series of a history. An unknown field is a mistake in
// a template: it panics, which fails the page (and its browser test)
// rather than drawing a flat line.
func pointValues(ps []spool.StatsPoint, field string) []float64 {
	get, ok := pointFields[field]
	if !ok {
		panic(fmt.Sprintf("dashboard: no history series %q", field))
	}
	out := make([]float64, len(ps))
	for i, p := range ps {
		out[i] = get(p)
	}
	return out
}

func maxOf(vs []float64) float64 {
	m := 0.0
	for _, v := range vs {
		m = math.Max(m, v)
	}
	return m
}
