// The one map: every device in scope coloured by status, over the place hierarchy; a click
// opens the device. Tiles only when the deployment configured its own tile URL.
(function () {
  "use strict";
  var box = document.getElementById("map");
  if (!box || !window.L) { return; }
  var map = L.map(box, { preferCanvas: true, attributionControl: false });
  if (box.dataset.tiles) { L.tileLayer(box.dataset.tiles, { maxZoom: 19 }).addTo(map); }
  fetch(box.dataset.src, { credentials: "same-origin" }).then(function (r) { return r.json(); })
    .then(function (data) {
      var all = L.latLngBounds([]);
      data.places.forEach(function (p) {
        var bounds = L.latLngBounds(p.bounds).pad(0.05);
        all.extend(bounds);
        L.rectangle(bounds, { color: "#57606a", weight: 1, fill: true, fillColor: "#fff", fillOpacity: 0.6, interactive: false })
          .bindTooltip((p.township || "") + " / " + p.village, { permanent: true, direction: "center", className: "place-label" })
          .addTo(map);
      });
      var renderer = L.canvas({ padding: 0.3 });
      for (var i = 0; i < data.ids.length; i++) {
        var marker = L.circleMarker([data.lat[i], data.lon[i]], {
          renderer: renderer, radius: 4, weight: 1,
          color: data.online[i] ? "#1a7f37" : "#c62828", fillOpacity: 0.8,
        });
        marker.deviceId = data.ids[i];
        marker.bindTooltip(data.ids[i] + " · " + data.kinds[data.kind[i]]);
        marker.on("click", function (e) {
          window.location.href = box.dataset.device + encodeURIComponent(e.target.deviceId);
        });
        marker.addTo(map);
      }
      if (all.isValid()) { map.fitBounds(all); } else { map.setView([0, 0], 2); }
      box.dataset.markers = String(data.ids.length);
    });
})();
