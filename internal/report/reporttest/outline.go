package reporttest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"

	"golang.org/x/net/html"
)

// Series is one entry of a figure's data-series attribute.
type Series struct {
	Name   string `json:"name"`
	Color  string `json:"color"`
	Kind   string `json:"kind"`
	Points int    `json:"points"`
}

// CardFields are the fields every incident card has (data-field).
var CardFields = []string{"headline", "time", "task", "container", "chain", "gfp", "stack", "zones", "reasons", "advice"}

// Outline is the structure of a report, one line per element that
// matters, stable across runs: what a golden file holds.
func Outline(doc []byte) (string, error) {
	root, err := html.Parse(bytes.NewReader(doc))
	if err != nil {
		return "", err
	}
	var b strings.Builder
	var walk func(n *html.Node, depth int)
	walk = func(n *html.Node, depth int) {
		if n.Type == html.ElementNode {
			switch {
			case n.Data == "section":
				fmt.Fprintf(&b, "section %s\n", attr(n, "id"))
			case n.Data == "h2" || n.Data == "h1":
				fmt.Fprintf(&b, "  %s %s\n", n.Data, text(n))
			case n.Data == "div" && hasClass(n, "verdict"):
				for c := n.FirstChild; c != nil; c = c.NextSibling {
					if c.Type == html.ElementNode && c.Data == "p" {
						fmt.Fprintf(&b, "  verdict: %s\n", text(c))
					}
				}
			case n.Data == "article" && hasClass(n, "incident"):
				fmt.Fprintf(&b, "  card %s cause=%s\n", attr(n, "id"), attr(n, "data-cause"))
				for _, f := range CardFields {
					fn := find(n, func(x *html.Node) bool { return attr(x, "data-field") == f })
					if fn == nil {
						fmt.Fprintf(&b, "    %s: MISSING\n", f)
						continue
					}
					t := text(fn)
					if f != "headline" && f != "chain" && len(t) > 60 {
						t = t[:60] + "…"
					}
					fmt.Fprintf(&b, "    %s: %s\n", f, t)
				}
			case n.Data == "figure" && hasClass(n, "chart"):
				series, err := FigureSeries(n)
				fmt.Fprintf(&b, "  chart %s %q", attr(n, "id"), text(find(n, tag("figcaption"))))
				if err != nil {
					fmt.Fprintf(&b, " BAD data-series: %v", err)
				}
				if find(n, tag("svg")) == nil {
					b.WriteString(" NO SVG")
				}
				b.WriteByte('\n')
				for _, s := range series {
					fmt.Fprintf(&b, "    series %q %s points=%d\n", s.Name, s.Kind, s.Points)
				}
				return // the SVG's insides are gonum's
			case n.Data == "table" && attr(n, "id") != "":
				rows := 0
				if tb := find(n, tag("tbody")); tb != nil {
					for c := tb.FirstChild; c != nil; c = c.NextSibling {
						if c.Type == html.ElementNode && c.Data == "tr" {
							rows++
						}
					}
				}
				fmt.Fprintf(&b, "  table %s rows=%d\n", attr(n, "id"), rows)
			case n.Data == "p" && hasClass(n, "empty"):
				fmt.Fprintf(&b, "  empty: %s\n", text(n))
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	return b.String(), nil
}

// FigureSeries reads a figure's data-series.
func FigureSeries(n *html.Node) ([]Series, error) {
	var s []Series
	err := json.Unmarshal([]byte(attr(n, "data-series")), &s)
	return s, err
}

// SelfContained lists what would make the page fetch something: scripts
// or stylesheets by URL, images, fonts or frames not inlined as data:,
// and a missing Content-Security-Policy that forbids the rest.
func SelfContained(doc []byte) []string {
	root, err := html.Parse(bytes.NewReader(doc))
	if err != nil {
		return []string{err.Error()}
	}
	var out []string
	csp := false
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode {
			switch n.Data {
			case "script", "link", "iframe", "object", "embed":
				out = append(out, "<"+n.Data+"> element")
			case "meta":
				if strings.EqualFold(attr(n, "http-equiv"), "Content-Security-Policy") &&
					strings.Contains(attr(n, "content"), "default-src 'none'") {
					csp = true
				}
			}
			for _, a := range n.Attr {
				k := strings.ToLower(a.Key)
				if k != "src" && k != "href" && !strings.HasSuffix(k, ":href") && k != "srcset" {
					continue
				}
				if !strings.HasPrefix(a.Val, "data:") && !strings.HasPrefix(a.Val, "#") {
					out = append(out, fmt.Sprintf("<%s %s=%.60q>", n.Data, a.Key, a.Val))
				}
			}
			if st := attr(n, "style"); strings.Contains(st, "url(") && !strings.Contains(st, "url(data:") {
				out = append(out, fmt.Sprintf("<%s style=%.60q>", n.Data, st))
			}
		}
		if n.Type == html.TextNode && n.Parent != nil && n.Parent.Data == "style" && strings.Contains(n.Data, "url(") {
			out = append(out, "url() in a stylesheet")
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(root)
	if !csp {
		out = append(out, "no Content-Security-Policy with default-src 'none'")
	}
	return out
}

func attr(n *html.Node, key string) string {
	if n == nil {
		return ""
	}
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

func hasClass(n *html.Node, c string) bool {
	for _, f := range strings.Fields(attr(n, "class")) {
		if f == c {
			return true
		}
	}
	return false
}

func tag(name string) func(*html.Node) bool {
	return func(n *html.Node) bool { return n.Type == html.ElementNode && n.Data == name }
}

func find(n *html.Node, ok func(*html.Node) bool) *html.Node {
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		if c.Type == html.ElementNode && ok(c) {
			return c
		}
		if f := find(c, ok); f != nil {
			return f
		}
	}
	return nil
}

// text is n's text with runs of white space made one space.
func text(n *html.Node) string {
	if n == nil {
		return ""
	}
	var b strings.Builder
	var walk func(*html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			b.WriteString(n.Data)
			b.WriteByte(' ')
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return strings.Join(strings.Fields(b.String()), " ")
}
