/* The filter chips: one per filter, "Page is /pricing ×"; the × removes it. */
import { $, el } from "./dom.js";
import { removeFilter, state } from "./state.js";

export const NAMES = {
  "visit:source": "Source",
  "visit:referrer": "Referrer",
  "event:page": "Page",
  "visit:entry_page": "Entry page",
  "visit:exit_page": "Exit page",
  "visit:device": "Device",
  "visit:browser": "Browser",
  "visit:os": "Operating system",
  "visit:utm_medium": "UTM medium",
  "visit:utm_source": "UTM source",
  "visit:utm_campaign": "UTM campaign",
  "event:name": "Event",
  "event:goal": "Goal",
};

export function renderFilters() {
  const bar = $("filters");
  bar.replaceChildren();
  for (const f of state.filters) {
    const chip = el("span", "chip");
    chip.dataset.dimension = f.dimension;
    const label = el("span", "chip-text");
    label.append(el("span", "chip-name", NAMES[f.dimension] || f.dimension), document.createTextNode(" is "),
      el("b", null, f.value));
    chip.append(label);
    const remove = el("button", "chip-remove", "×");
    remove.type = "button";
    remove.title = `Remove the filter ${NAMES[f.dimension] || f.dimension} is ${f.value}`;
    remove.setAttribute("aria-label", remove.title);
    remove.addEventListener("click", () => removeFilter(f.dimension));
    chip.append(remove);
    bar.append(chip);
  }
  bar.hidden = state.filters.length === 0;
}
