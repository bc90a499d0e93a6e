// Package report is `fragscope report`: one self-contained HTML file that
// shows what a recording, an agent's data dir or a kernel log holds, for a
// colleague or a ticket. It is a view of the pipeline like the terminal and
// JSON views: it reads the events, the session and the aggregator's
// counts as the pipeline folds them, and the correlator's incidents, and
// keeps only what it draws, binned on a timeline of at most maxCells
// columns so that a 24 h data dir renders in seconds.
//
// The charts are drawn server-side by gonum/plot as inline SVG (charts.go),
// the page laid out by one html/template (report.html.tmpl) with no script;
// docs/report.md says why and what the page holds.
package report
