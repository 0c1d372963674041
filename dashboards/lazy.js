// Lazy charts: a div.chart with data-src is drawn when it scrolls into view, from its own
// JSON file ({data, layout}), so a page with a year of trends loads at once and draws only
// what is looked at. fetch() needs the site served over http (python3 -m http.server in the
// site's folder, or any web server); opened as file:// Chromium refuses the request, and the
// chart says so instead of staying blank.
(function () {
  const config = {"displaylogo": false, "responsive": true};
  function draw(el) {
    fetch(el.dataset.src)
      .then(r => { if (!r.ok) throw new Error(r.status + " " + r.statusText); return r.json(); })
      .then(figure => Plotly.newPlot(el, figure.data, figure.layout, config))
      .catch(err => {
        el.dataset.failed = "1";
        el.textContent = (location.protocol === "file:")
          ? "This chart loads its data over http: serve the site (python3 -m http.server) " +
            "and open it from there."
          : "Could not load " + el.dataset.src + ": " + err.message;
        console.error("chart " + el.id + ": " + el.dataset.src + ": " + err.message);
      });
  }
  const charts = document.querySelectorAll("div.chart[data-src]");
  if (!("IntersectionObserver" in window)) { charts.forEach(draw); return; }
  const seen = new IntersectionObserver(entries => entries.forEach(entry => {
    if (entry.isIntersecting) { seen.unobserve(entry.target); draw(entry.target); }
  }), {rootMargin: "200px"});
  charts.forEach(el => seen.observe(el));
})();
