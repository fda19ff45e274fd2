// thrifty dashboard: apply a filter as soon as it changes (the Apply button stays for
// keyboards and for pages without script). No network access, no dependencies.
document.addEventListener("DOMContentLoaded", function () {
  var form = document.getElementById("filters");
  if (!form) return;
  form.querySelectorAll("select").forEach(function (select) {
    select.addEventListener("change", function () { form.submit(); });
  });
});
