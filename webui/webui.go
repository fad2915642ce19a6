// Package webui is the web view served at /ui/: static files (plain HTML,
// CSS and JavaScript modules, nothing fetched from elsewhere) embedded in
// the binary. The page reads the REST API of the server that serves it;
// it holds no data of its own, so the files need no token.
package webui

import (
	"embed"
	"io/fs"
	"net/http"
)

//go:embed ui
var files embed.FS

// contentPolicy lets the page load only its own files, call only its own
// server, and show the diagrams it fetched (inline SVG, blob: URLs for
// downloads).
const contentPolicy = "default-src 'self'; img-src 'self' blob: data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"

// Register serves the web view at /ui/ on mux (and redirects /ui there).
func Register(mux *http.ServeMux) {
	sub, err := fs.Sub(files, "ui")
	if err != nil {
		panic(err) // the embedded tree always has ui/
	}
	static := http.StripPrefix("/ui/", http.FileServerFS(sub))
	mux.Handle("GET /ui/", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Security-Policy", contentPolicy)
		w.Header().Set("X-Content-Type-Options", "nosniff")
		w.Header().Set("Cache-Control", "no-cache")
		static.ServeHTTP(w, r)
	}))
	mux.Handle("GET /ui", http.RedirectHandler("/ui/", http.StatusMovedPermanently))
}
