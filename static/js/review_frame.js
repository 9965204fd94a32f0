"use strict";
// A click on the frame fills the third box's centre (frame pixels) and selects "a third box".
document.getElementById("review-canvas").addEventListener("click", (event) => {
  const svg = event.currentTarget;
  const point = new DOMPoint(event.clientX, event.clientY).matrixTransform(svg.getScreenCTM().inverse());
  document.getElementById("id_center_x").value = point.x.toFixed(1);
  document.getElementById("id_center_y").value = point.y.toFixed(1);
  const dot = document.getElementById("third-centre");
  dot.setAttribute("cx", point.x); dot.setAttribute("cy", point.y); dot.setAttribute("visibility", "visible");
  document.querySelector('input[name="keep"][value="__third__"]').checked = true;
});
