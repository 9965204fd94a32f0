// The gallery's opacity slider: one CSS variable blends every heatmap over its crop.
(function () {
  const slider = document.getElementById("opacity");
  const gallery = document.getElementById("gallery");
  const shown = document.getElementById("opacity-value");
  if (!slider || !gallery) return;
  const apply = () => {
    gallery.style.setProperty("--heat-opacity", String(slider.value / 100));
    if (shown) shown.textContent = `${slider.value}%`;
  };
  slider.addEventListener("input", apply);
  apply();
  gallery.dataset.ready = "1";
})();
