/* Framework tabs: one choice switches every tab group of every page.
 *
 * The choice comes from, in order: the URL (?framework=mxnet), localStorage (remembered across
 * pages and reloads, from a static server as from file://), then PyTorch. A group without code
 * for the chosen framework shows its first tab and says so; elements marked
 * data-show-for="FW" (the notebook download, a glued value in shared prose) show for that
 * framework only. The page's table of contents is open on wide screens (a sidebar), folded on
 * phones. No request, no dependency.
 */
(function () {
  "use strict";
  var KEY = "d2l-fr.framework";
  var FRAMEWORKS = ["pytorch", "tensorflow", "mxnet"];

  function known(fw) {
    return FRAMEWORKS.indexOf(fw) >= 0 ? fw : null;
  }
  function fromUrl() {
    return known(new URLSearchParams(window.location.search).get("framework"));
  }
  function load() {
    try {
      return known(window.localStorage.getItem(KEY));
    } catch (e) {
      return null; // storage disabled: the choice lasts for this page only
    }
  }
  function save(fw) {
    try {
      window.localStorage.setItem(KEY, fw);
    } catch (e) {
      /* storage disabled */
    }
  }
  function label(group, fw) {
    var tab = group.querySelector('[role="tab"][data-framework="' + fw + '"]');
    if (tab) return tab.textContent;
    var any = document.querySelector('.picker [data-framework="' + fw + '"]');
    return any ? any.textContent : fw;
  }

  function apply(fw) {
    document.documentElement.setAttribute("data-framework", fw);
    var template = document.body.getAttribute("data-missing") || "";
    document.querySelectorAll("[data-tabs]").forEach(function (group) {
      var tabs = group.querySelectorAll('[role="tab"]');
      if (!tabs.length) return;
      var has = group.querySelector('[role="tab"][data-framework="' + fw + '"]');
      var shown = has ? fw : tabs[0].getAttribute("data-framework");
      tabs.forEach(function (tab) {
        var on = tab.getAttribute("data-framework") === shown;
        tab.setAttribute("aria-selected", on ? "true" : "false");
        tab.tabIndex = on ? 0 : -1;
      });
      group.querySelectorAll('[role="tabpanel"]').forEach(function (panel) {
        panel.hidden = panel.getAttribute("data-framework") !== shown;
      });
      var note = group.querySelector(".tab-missing");
      if (note) {
        note.hidden = Boolean(has);
        note.textContent = has
          ? ""
          : template.replace("{wanted}", label(group, fw)).replace("{shown}", label(group, shown));
      }
    });
    document.querySelectorAll("[data-show-for]").forEach(function (element) {
      element.hidden = element.getAttribute("data-show-for") !== fw;
    });
    document.querySelectorAll(".picker [data-framework]").forEach(function (button) {
      button.setAttribute("aria-pressed", button.getAttribute("data-framework") === fw);
    });
  }

  function choose(fw, keepInView) {
    var before = keepInView ? keepInView.getBoundingClientRect().top : 0;
    apply(fw);
    save(fw);
    if (fromUrl()) {
      try {
        var url = new URL(window.location.href);
        url.searchParams.set("framework", fw);
        window.history.replaceState(null, "", url.href);
      } catch (e) {
        /* some browsers refuse history changes on file:// */
      }
    }
    // Groups above may change height: keep the clicked tab where the reader's eyes are.
    if (keepInView) window.scrollBy(0, keepInView.getBoundingClientRect().top - before);
  }

  function sidebar() {
    var toc = document.querySelector(".page-toc");
    if (!toc || !window.matchMedia) return;
    var wide = window.matchMedia("(min-width: 75rem)");
    var update = function () {
      toc.open = wide.matches;
    };
    update();
    wide.addEventListener("change", update);
    toc.addEventListener("click", function (event) {
      // On phones, following a link folds the list away again.
      if (!wide.matches && event.target.closest("a")) toc.open = false;
    });
  }

  function start() {
    sidebar();
    var fw = fromUrl();
    if (fw) save(fw);
    apply(fw || load() || FRAMEWORKS[0]);

    document.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-framework]");
      if (button) choose(button.getAttribute("data-framework"), button);
    });
    document.addEventListener("keydown", function (event) {
      var tab = event.target.closest('[role="tab"]');
      if (!tab || (event.key !== "ArrowRight" && event.key !== "ArrowLeft")) return;
      var tabs = Array.prototype.slice.call(tab.parentNode.querySelectorAll('[role="tab"]'));
      var step = event.key === "ArrowRight" ? 1 : tabs.length - 1;
      var next = tabs[(tabs.indexOf(tab) + step) % tabs.length];
      choose(next.getAttribute("data-framework"), next);
      next.focus();
      event.preventDefault();
    });
    window.addEventListener("storage", function (event) {
      if (event.key === KEY && known(event.newValue)) apply(event.newValue);
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
