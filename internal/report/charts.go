package report

import (
	"bytes"
	"fmt"
	"html/template"
	"image/color"
	"math"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/font"
	"gonum.org/v1/plot/palette"
	"gonum.org/v1/plot/palette/brewer"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/vg"
	"gonum.org/v1/plot/vg/draw"
	"gonum.org/v1/plot/vg/vgsvg"
)

// chart is one figure: its SVG (drawn by gonum/plot) and the series it
// draws, each in a colour of its own, which the legend under the chart
// names and the browser test looks for inside the SVG.
type chart struct {
	ID     string
	Title  string
	Note   string
	SVG    template.HTML
	Series []series
	// Heat is the heatmap's colour scale, for its legend; nil otherwise.
	Heat *heatScale
}

type series struct {
	Name   string `json:"name"`
	Color  string `json:"color"` // "#RRGGBB", as vgsvg writes it
	Kind   string `json:"kind"`  // "line", "points", "bars", "marks", "image"
	Points int    `json:"points"`
}

type heatScale struct {
	Max   uint64
	Stops []string // CSS colours, low to high
	Empty string
}

const (
	chartW    = 18 * vg.Centimeter
	chartH    = 6 * vg.Centimeter
	heatH     = 6.5 * vg.Centimeter
	incidentC = "#555555" // incident lines: no series colour, not the axes' black
	failureC  = "#E7298A"
	emptyC    = "#000000"
)

// seriesColors are the colours of the lines: ColorBrewer's qualitative
// Set1 and Dark2 (gonum's brewer tables), distinct from each other and from
// the incident and failure marks.
var seriesColors = func() []color.Color {
	var out []color.Color
	for _, name := range []string{"Set1", "Dark2"} {
		p, err := brewer.GetPalette(brewer.TypeQualitative, name, 8)
		if err != nil {
			panic(err)
		}
		for _, c := range p.Colors() {
			if hexColor(c) != failureC {
				out = append(out, c)
			}
		}
	}
	return out
}()

// heatPalette is ColorBrewer's sequential YlGnBu: few free blocks light,
// many dark; an empty order is black (heatmap Underflow).
var heatPalette = func() palette.Palette {
	p, err := brewer.GetPalette(brewer.TypeSequential, "YlGnBu", 9)
	if err != nil {
		panic(err)
	}
	return p
}()

func hexColor(c color.Color) string {
	r, g, b, a := c.RGBA()
	if a == 0 {
		return "#000000"
	}
	k := 255.0 / float64(a)
	return fmt.Sprintf("#%02X%02X%02X", int(float64(r)*k), int(float64(g)*k), int(float64(b)*k))
}

func mustColor(s string) color.Color {
	var r, g, b uint8
	fmt.Sscanf(s, "#%02X%02X%02X", &r, &g, &b)
	return color.RGBA{r, g, b, 255}
}

// The charts' text is measured with Liberation Sans, which the page
// names first (gonum's default is the serif): Arial and Helvetica, the
// fallbacks, have the same metrics.
func init() {
	plot.DefaultFont = font.Font{Typeface: "Liberation", Variant: "Sans"}
	plotter.DefaultFont = plot.DefaultFont
}

// newPlot is a plot with the report's fonts and sizes.
func newPlot(xLabel, yLabel string) *plot.Plot {
	p := plot.New()
	p.X.Label.Text = xLabel
	p.Y.Label.Text = yLabel
	p.X.Label.TextStyle.Font.Size = vg.Points(9)
	p.Y.Label.TextStyle.Font.Size = vg.Points(9)
	p.X.Tick.Label.Font.Size = vg.Points(8)
	p.Y.Tick.Label.Font.Size = vg.Points(8)
	p.Legend.Top = true
	return p
}

// timeAxis puts the cells' times (Unix seconds, UTC) on p's x axis.
func (r *Report) timeAxis(p *plot.Plot) {
	p.X.Tick.Marker = timeTicks(time.Duration(len(r.tl.cells)) * r.tl.width)
	p.X.Min = unix(r.tl.start(0))
	p.X.Max = unix(r.tl.start(len(r.tl.cells)))
}

// timeTicks labels an axis of span with clockTicks, as precisely as
// their steps: sub-second steps below 6 s.
func timeTicks(span time.Duration) plot.TimeTicks {
	format := "15:04:05"
	switch {
	case span > 36*time.Hour:
		format = "01-02 15:04"
	case span > 2*time.Hour:
		format = "15:04"
	case span <= 60*time.Millisecond:
		format = "15:04:05.000"
	case span <= 600*time.Millisecond:
		format = "15:04:05.00"
	case span <= 6*time.Second:
		format = "15:04:05.0"
	}
	// gonum's UTCUnixTime drops the fraction of a second.
	return plot.TimeTicks{Ticker: clockTicks{}, Format: format,
		Time: func(t float64) time.Time { return time.Unix(0, int64(math.Round(t*1e9))).UTC() }}
}

// clockSteps are the tick steps a reader expects on a clock: gonum's
// default ticks are round numbers of seconds (a 24 h axis got 04:40,
// 13:00, 21:20).
var clockSteps = []time.Duration{
	time.Millisecond, 2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond,
	50 * time.Millisecond, 100 * time.Millisecond, 200 * time.Millisecond, 500 * time.Millisecond,
	time.Second, 2 * time.Second, 5 * time.Second, 10 * time.Second, 15 * time.Second, 30 * time.Second,
	time.Minute, 2 * time.Minute, 5 * time.Minute, 10 * time.Minute, 15 * time.Minute, 30 * time.Minute,
	time.Hour, 2 * time.Hour, 3 * time.Hour, 6 * time.Hour, 12 * time.Hour, 24 * time.Hour,
	2 * 24 * time.Hour, 7 * 24 * time.Hour, 14 * 24 * time.Hour,
}

// clockTicks labels about five round clock times (UTC) on an axis of
// Unix seconds, with unlabelled minor ticks between them.
type clockTicks struct{}

func (clockTicks) Ticks(min, max float64) []plot.Tick {
	span := time.Duration((max - min) * 1e9)
	step := clockSteps[len(clockSteps)-1]
	for _, s := range clockSteps {
		if span/s <= 6 {
			step = s
			break
		}
	}
	for span/step > 6 { // months or years (kernel logs of a long-lived host)
		step *= 2
	}
	minor := step / 5
	if step%(4*time.Hour) == 0 || step == 3*time.Hour {
		minor = step / 3
	}
	var out []plot.Tick
	first := time.Unix(0, int64(min*1e9)).UTC().Truncate(minor)
	for t := first; unix(t) <= max; t = t.Add(minor) {
		if unix(t) < min {
			continue
		}
		tk := plot.Tick{Value: unix(t)}
		if t.Truncate(step).Equal(t) {
			tk.Label = "x" // TimeTicks replaces it with the formatted time
		}
		out = append(out, tk)
	}
	return out
}

func unix(t time.Time) float64 { return float64(t.UnixNano()) / 1e9 }

// svg renders p as inline SVG: without the XML prolog, which HTML does
// not take.
func svg(p *plot.Plot, w, h vg.Length) (template.HTML, error) {
	c := vgsvg.New(w, h)
	p.Draw(draw.New(c))
	var buf bytes.Buffer
	if _, err := c.WriteTo(&buf); err != nil {
		return "", err
	}
	out := buf.String()
	if i := strings.Index(out, "<svg"); i >= 0 {
		out = out[i:]
	}
	// vgsvg places a raster (the heatmaps) in its plot rectangle but
	// leaves SVG's default preserveAspectRatio, which letterboxes an image
	// of 1024x11 cells into a thin band: stretch it as gonum means it.
	out = strings.ReplaceAll(out, "<image ", `<image preserveAspectRatio="none" `)
	return template.HTML(out), nil //nolint:gosec // gonum escapes the text it writes (html.EscapeString)
}

// marks adds the incidents and the failure points of the cells to p:
// every cell with a failure keeps its mark whatever the downsampling. y is
// where a failure of an order goes (nil: the marks are left out); an
// incident is a square at top, with a dashed line down to lo when there
// are few enough for lines not to hide the chart.
func (r *Report) marks(p *plot.Plot, ch *chart, y func(order int) (float64, bool), lo, top float64) {
	var incs, fails plotter.XYs
	for i := range r.tl.cells {
		c := &r.tl.cells[i]
		x := unix(r.tl.mid(i))
		if c.incidents > 0 {
			incs = append(incs, plotter.XY{X: x, Y: top})
		}
		if y == nil {
			continue
		}
		for o, n := range c.fails {
			if n == 0 {
				continue
			}
			if v, ok := y(o); ok {
				fails = append(fails, plotter.XY{X: x, Y: v})
			}
		}
	}
	if len(incs) <= incidentLines {
		for _, pt := range incs {
			l, _ := plotter.NewLine(plotter.XYs{{X: pt.X, Y: lo}, pt})
			l.Color = mustColor(incidentC)
			l.Width = vg.Points(0.8)
			l.Dashes = []vg.Length{vg.Points(3), vg.Points(2)}
			p.Add(l)
		}
	}
	if len(incs) > 0 {
		s, _ := plotter.NewScatter(incs)
		s.Shape = draw.BoxGlyph{}
		s.Radius = vg.Points(2.5)
		s.Color = mustColor(incidentC)
		p.Add(s)
		ch.Series = append(ch.Series, series{Name: "incident", Color: incidentC, Kind: "marks", Points: len(incs)})
	}
	if len(fails) > 0 {
		s, _ := plotter.NewScatter(fails)
		s.Shape = draw.PyramidGlyph{} // filled: visible on black (empty) cells too
		s.Radius = vg.Points(3.5)
		s.Color = mustColor(failureC)
		p.Add(s)
		ch.Series = append(ch.Series, series{Name: "failed allocation", Color: failureC, Kind: "points", Points: len(fails)})
	}
}

// grid is a zone's free blocks by order over the cells, as log10(1+n):
// NaN where no snapshot is known, the last snapshot carried forward for
// up to fillFor (snapshots come every few seconds; columns may be finer).
type grid struct {
	r     *Report
	zone  int
	z     [][]float64 // [cell][order]
	max   uint64
	empty bool
}

const fillFor = time.Minute

// incidentLines is how many incidents a chart draws as lines across it;
// beyond, only their marks along the top.
const incidentLines = 12

func (r *Report) grid(zone int) *grid {
	g := &grid{r: r, zone: zone, empty: true}
	g.z = make([][]float64, len(r.tl.cells))
	fill := max(int(fillFor/r.tl.width), 1)
	var last *zoneCell
	lastAt := -1
	for i := range r.tl.cells {
		c := &r.tl.cells[i]
		row := make([]float64, r.orders)
		if zone < len(c.zones) && c.zones[zone].have {
			last, lastAt = &c.zones[zone], i
		}
		for o := range row {
			row[o] = math.NaN()
			if last != nil && i-lastAt <= fill {
				row[o] = math.Log10(1 + float64(last.free[o]))
				g.max = max(g.max, last.free[o])
				g.empty = false
			}
		}
		g.z[i] = row
	}
	return g
}

func (g *grid) Dims() (c, r int)   { return len(g.z), g.r.orders }
func (g *grid) Z(c, r int) float64 { return g.z[c][r] }
func (g *grid) X(c int) float64    { return unix(g.r.tl.mid(c)) }
func (g *grid) Y(r int) float64    { return float64(r) }

// heatmap is one zone's free blocks by order over time.
func (r *Report) heatmap(zone int) (*chart, error) {
	g := r.grid(zone)
	k := r.zones[zone]
	ch := &chart{
		ID:    fmt.Sprintf("heatmap-%d-%s", k.node, k.name),
		Title: fmt.Sprintf("Free blocks by order, %s", k),
		Note: "each column is the fewest free blocks any snapshot in it showed " +
			fmt.Sprintf("(columns of %s); black: no free block of that order", r.tl.width),
	}
	if g.empty {
		return ch, nil
	}
	p := newPlot("time (UTC)", "order")
	r.timeAxis(p)
	hm := plotter.NewHeatMap(g, heatPalette)
	hm.Rasterized = true // one pixel per cell: small, and crisp with image-rendering: pixelated
	hm.Min = math.Log10(1.5)
	hm.Max = math.Max(math.Log10(1+float64(g.max)), hm.Min+1e-9)
	hm.Underflow = mustColor(emptyC)
	p.Add(hm)
	ch.Series = append(ch.Series, series{Name: "free blocks", Color: "", Kind: "image", Points: len(g.z) * r.orders})
	// A row above the highest order holds the incidents' marks, when
	// there are any.
	p.Y.Min, p.Y.Max = -0.5, float64(r.orders)-0.5
	ticks := orderTicks{orders: r.orders}
	if r.incidents > 0 {
		p.Y.Max++
		ticks.incidents = true
	}
	p.Y.Tick.Marker = ticks
	r.marks(p, ch, func(o int) (float64, bool) { return float64(o), o < r.orders }, -0.5, float64(r.orders))
	svg, err := svg(p, chartW, heatH)
	if err != nil {
		return nil, err
	}
	ch.SVG = svg
	stops := make([]string, 0, len(heatPalette.Colors()))
	for _, c := range heatPalette.Colors() {
		stops = append(stops, hexColor(c))
	}
	ch.Heat = &heatScale{Max: g.max, Stops: stops, Empty: emptyC}
	return ch, nil
}

// orderTicks labels every order (or every other past 12), and the
// incidents' row above them.
type orderTicks struct {
	orders    int
	incidents bool
}

func (k orderTicks) Ticks(min, max float64) []plot.Tick {
	step := 1
	if k.orders > 12 {
		step = 2
	}
	var out []plot.Tick
	for o := 0; o < k.orders; o++ {
		t := plot.Tick{Value: float64(o)}
		if o%step == 0 {
			t.Label = fmt.Sprint(o)
		}
		out = append(out, t)
	}
	if k.incidents {
		out = append(out, plot.Tick{Value: float64(k.orders), Label: "incidents"})
	}
	return out
}

// lines draws one line per named series over the cells: y returns a
// cell's value and whether it has one. Cells without a value break
// nothing: the line joins the ones that have.
type lineSpec struct {
	name string
	y    func(c *cell) (float64, bool)
}

func (r *Report) lines(ch *chart, yLabel string, specs []lineSpec, logY bool) error {
	p := newPlot("time (UTC)", yLabel)
	r.timeAxis(p)
	lo, hi := math.Inf(1), math.Inf(-1)
	for si, s := range specs {
		var pts plotter.XYs
		for i := range r.tl.cells {
			v, ok := s.y(&r.tl.cells[i])
			if !ok || math.IsNaN(v) || math.IsInf(v, 0) {
				continue
			}
			if logY {
				v = math.Max(v, logFloor)
			}
			lo, hi = math.Min(lo, v), math.Max(hi, v)
			pts = append(pts, plotter.XY{X: unix(r.tl.mid(i)), Y: v})
		}
		if len(pts) == 0 {
			continue
		}
		col := seriesColors[si%len(seriesColors)]
		l, err := plotter.NewLine(pts)
		if err != nil {
			return err
		}
		l.Color = col
		l.Width = vg.Points(1.2)
		p.Add(l)
		kind := "line"
		if len(pts) < 3 {
			// A line of one point draws nothing: mark its points.
			sc, _ := plotter.NewScatter(pts)
			sc.Color = col
			sc.Shape = draw.CircleGlyph{}
			p.Add(sc)
			kind = "points"
		}
		ch.Series = append(ch.Series, series{Name: s.name, Color: hexColor(col), Kind: kind, Points: len(pts)})
	}
	if len(ch.Series) == 0 {
		return nil
	}
	if logY {
		p.Y.Scale = plot.LogScale{}
		p.Y.Tick.Marker = plot.LogTicks{Prec: -1}
		// Whole decades: LogTicks labels only powers of ten.
		p.Y.Min = math.Pow(10, math.Floor(math.Log10(lo)))
		p.Y.Max = math.Pow(10, math.Ceil(math.Log10(hi)))
		if p.Y.Max <= p.Y.Min {
			p.Y.Max = p.Y.Min * 10
		}
	} else {
		p.Y.Min = math.Min(0, lo)
		p.Y.Max = math.Max(hi, p.Y.Min+1)
	}
	r.marks(p, ch, nil, p.Y.Min, p.Y.Max)
	out, err := svg(p, chartW, chartH)
	if err != nil {
		return err
	}
	ch.SVG = out
	return nil
}

// logFloor is where a zero lands on a log axis: below any real rate the
// charts show (allocations per second of counted time).
const logFloor = 0.01

// bars draws a horizontal bar chart of labelled values.
func bars(ch *chart, name string, labels []string, values []float64, xLabel string) error {
	if len(values) == 0 {
		return nil
	}
	p := newPlot(xLabel, "")
	vs := make(plotter.Values, len(values))
	// The first label on top: gonum counts rows from the bottom.
	names := make([]string, len(labels))
	for i := range values {
		vs[len(values)-1-i] = values[i]
		names[len(values)-1-i] = labels[i]
	}
	b, err := plotter.NewBarChart(vs, vg.Points(9))
	if err != nil {
		return err
	}
	b.Horizontal = true
	col := seriesColors[0]
	b.Color = col
	b.LineStyle.Width = 0
	p.Add(b)
	p.NominalY(names...)
	p.Y.Tick.Label.Font.Size = vg.Points(7)
	p.X.Min = 0
	h := vg.Length(len(values))*vg.Points(14) + 2*vg.Centimeter
	out, err := svg(p, chartW, h)
	if err != nil {
		return err
	}
	ch.SVG = out
	ch.Series = append(ch.Series, series{Name: name, Color: hexColor(col), Kind: "bars", Points: len(values)})
	return nil
}

// zoneBars is the picture of one snapshot: for each zone, the memory free
// in blocks of each order (blocks × 2^order pages), which shows where the
// free memory sits and which orders are empty.
func zoneBars(ch *chart, zones []zoneFree, orders int, failed int) error {
	if orders == 0 || len(zones) == 0 {
		return nil
	}
	p := newPlot("order (block of 2^order pages)", "free kB in blocks of that order")
	w := vg.Points(10) / vg.Length(max(len(zones), 1)) * 1.6
	n := 0
	for zi, z := range zones {
		vs := make(plotter.Values, orders)
		for o := range orders {
			if o < len(z.kB) {
				vs[o] = z.kB[o]
			}
		}
		b, err := plotter.NewBarChart(vs, w)
		if err != nil {
			return err
		}
		col := seriesColors[zi%len(seriesColors)]
		b.Color = col
		b.LineStyle.Width = 0
		b.Offset = vg.Length(zi-len(zones)/2) * w
		if len(zones)%2 == 0 {
			b.Offset += w / 2
		}
		p.Add(b)
		ch.Series = append(ch.Series, series{Name: z.name, Color: hexColor(col), Kind: "bars", Points: orders})
		n++
	}
	if n == 0 {
		return nil
	}
	names := make([]string, orders)
	for o := range names {
		names[o] = fmt.Sprint(o)
		if o == failed {
			names[o] += "*"
		}
	}
	p.NominalX(names...)
	p.Y.Min = 0
	out, err := svg(p, chartW, chartH)
	if err != nil {
		return err
	}
	ch.SVG = out
	return nil
}

type zoneFree struct {
	name string
	kB   []float64
}
