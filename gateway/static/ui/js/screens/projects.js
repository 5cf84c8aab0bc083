// Placeholder until the projects screens land.
import {h} from "../dom.js";

export default {title: "Projects", needs: null, render(root) { root.append(h("h1", "Projects")); return {}; }};
