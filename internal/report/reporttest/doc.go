// Package reporttest reads the HTML reports internal/report writes, for the
// tests: an outline of their structure (sections, charts and their series,
// incident cards and their fields, tables) for golden files, the
// self-containedness rules, and a headless Chromium that renders a report
// and checks it in the browser (chromium.go).
package reporttest
