/// A flame graph as one self-contained SVG file (`--flamegraph FILE.svg`): frames stacked from
/// the outermost at the bottom, each as wide as its share of the samples, with a tooltip, click
/// to zoom into a frame (and its callees) and a search that highlights matching frames and says
/// what share of the samples they hold. Nothing is fetched: the script is inside the file.
enum FlameGraph {
  /// One frame of the merged tree: its name, the samples under it, and its callees by name.
  final class Node {
    let name: String
    var count: UInt64 = 0
    var children: [String: Node] = [:]
    /// Callees in first-seen order, so equal inputs draw alike.
    var order: [String] = []
    init(name: String) { self.name = name }

    func child(_ name: String) -> Node {
      if let known = children[name] { return known }
      let node = Node(name: name)
      children[name] = node
      order.append(name)
      return node
    }
  }

  static let width = 1200.0
  static let frameHeight = 16.0
  static let margin = 10.0
  static let header = 40.0

  /// The SVG of `stacks` (frames outermost first, with their counts) titled `title`.
  static func svg(_ stacks: [(frames: [String], count: UInt64)], title: String) -> String {
    let root = Node(name: "all")
    for (frames, count) in stacks {
      var node = root
      node.count += count
      for frame in frames {
        node = node.child(frame)
        node.count += count
      }
    }
    let depth = maxDepth(root)
    let height = header + Double(depth + 1) * frameHeight + 2 * margin
    var rects = ""
    if root.count > 0 {
      layout(root, x: margin, depth: 0, scale: (width - 2 * margin) / Double(root.count), total: root.count, height: height, into: &rects)
    }
    return """
      <?xml version="1.0" standalone="no"?>
      <svg version="1.1" width="\(format(width))" height="\(format(height))" viewBox="0 0 \(format(width)) \(format(height))" \
      xmlns="http://www.w3.org/2000/svg" onload="init(evt)">
      <style>text { font-family: Verdana, sans-serif; font-size: 12px; fill: #000; } .frame:hover rect { stroke: #000; stroke-width: 0.5; } #details, #matched { font-size: 12px; } #search, #reset { cursor: pointer; }</style>
      <rect x="0" y="0" width="100%" height="100%" fill="#f8f8f8"/>
      <text x="\(format(width / 2))" y="20" text-anchor="middle" style="font-size: 16px">\(escaped(title))</text>
      <text id="reset" x="\(format(margin))" y="20" visibility="hidden">Reset zoom</text>
      <text id="search" x="\(format(width - margin))" y="20" text-anchor="end">Search</text>
      <text id="matched" x="\(format(width - margin))" y="\(format(height - 2))" text-anchor="end"></text>
      <text id="details" x="\(format(margin))" y="\(format(height - 2))"> </text>
      <g id="frames">
      \(rects)</g>
      <script type="text/ecmascript"><![CDATA[
      \(script)
      ]]></script>
      </svg>

      """
  }

  static func maxDepth(_ node: Node) -> Int {
    node.children.values.map { 1 + maxDepth($0) }.max() ?? 0
  }

  /// Rectangles of `node` and its callees, the outermost at the bottom.
  static func layout(
    _ node: Node, x: Double, depth: Int, scale: Double, total: UInt64, height: Double, into out: inout String
  ) {
    let w = Double(node.count) * scale
    let y = height - margin - Double(depth + 1) * frameHeight
    let share = Double(node.count) * 100 / Double(total)
    let label = "\(node.name) (\(node.count) samples, \(format(share))%)"
    out += "<g class=\"frame\"><title>\(escaped(label))</title>"
    out += "<rect x=\"\(format(x))\" y=\"\(format(y))\" width=\"\(format(w))\" height=\"\(format(frameHeight - 1))\" "
    out += "fill=\"\(color(of: node.name))\" rx=\"2\" ry=\"2\" data-samples=\"\(node.count)\"/>"
    out += "<text x=\"\(format(x + 3))\" y=\"\(format(y + frameHeight - 4))\">\(escaped(fitted(node.name, width: w)))</text></g>\n"
    var childX = x
    for name in node.order {
      guard let child = node.children[name] else { continue }
      layout(child, x: childX, depth: depth + 1, scale: scale, total: total, height: height, into: &out)
      childX += Double(child.count) * scale
    }
  }

  /// The name cut to what fits in `width` pixels (about 7 a character), or nothing.
  static func fitted(_ name: String, width: Double) -> String {
    let room = Int((width - 6) / 7)
    if room < 3 { return "" }
    if name.count <= room { return name }
    return String(name.prefix(room - 2)) + ".."
  }

  /// Warm colours, stable per name (so a function keeps its colour across graphs).
  static func color(of name: String) -> String {
    var hash: UInt32 = 2_166_136_261
    for byte in name.utf8 { hash = (hash ^ UInt32(byte)) &* 16_777_619 }
    let red = 205 + Int(hash % 50)
    let green = Int((hash >> 8) % 180)
    let blue = Int((hash >> 16) % 55)
    return "rgb(\(red),\(green),\(blue))"
  }

  static func format(_ value: Double) -> String {
    let rounded = (value * 100).rounded() / 100
    return rounded == rounded.rounded() ? String(Int(rounded)) : String(rounded)
  }

  static func escaped(_ text: String) -> String {
    var out = ""
    for c in text {
      switch c {
      case "&": out += "&amp;"
      case "<": out += "&lt;"
      case ">": out += "&gt;"
      case "\"": out += "&quot;"
      default: out.append(c)
      }
    }
    return out
  }

  /// Zoom (click a frame: it and its callees fill the width; its callers are dimmed), reset,
  /// search (a regular expression: matches turn purple, their share is shown) and details on hover.
  static let script = """
    var frames, details, matched, reset, searchButton, original = [];
    function init(evt) {
      frames = document.getElementById("frames");
      details = document.getElementById("details");
      matched = document.getElementById("matched");
      reset = document.getElementById("reset");
      searchButton = document.getElementById("search");
      var groups = frames.getElementsByTagName("g");
      for (var i = 0; i < groups.length; i++) {
        var r = groups[i].getElementsByTagName("rect")[0];
        var t = groups[i].getElementsByTagName("text")[0];
        original.push({g: groups[i], r: r, t: t, x: +r.getAttribute("x"), w: +r.getAttribute("width"),
          y: +r.getAttribute("y"), fill: r.getAttribute("fill"),
          name: groups[i].getElementsByTagName("title")[0].textContent.replace(/ \\(\\d+ samples.*$/, "")});
        groups[i].onclick = zoomTo(original[i]);
        groups[i].onmouseover = show(original[i]);
        groups[i].onmouseout = function() { details.textContent = " "; };
      }
      reset.onclick = function() { zoom(original[0]); reset.setAttribute("visibility", "hidden"); };
      searchButton.onclick = search;
    }
    function show(f) { return function() { details.textContent = f.g.getElementsByTagName("title")[0].textContent; }; }
    function zoomTo(f) { return function() { zoom(f); reset.setAttribute("visibility", "visible"); }; }
    function zoom(f) {
      var left = original[0].x, width = original[0].w, scale = width / f.w;
      for (var i = 0; i < original.length; i++) {
        var o = original[i];
        var inside = o.x >= f.x - 0.0001 && o.x + o.w <= f.x + f.w + 0.0001;
        var below = o.y >= f.y && o.x <= f.x && o.x + o.w >= f.x + f.w;
        if (inside && o.y <= f.y) {
          var x = left + (o.x - f.x) * scale, w = o.w * scale;
          o.r.setAttribute("x", x); o.r.setAttribute("width", w);
          o.t.setAttribute("x", x + 3); o.t.textContent = fit(o.name, w);
          o.g.style.display = ""; o.g.style.opacity = 1;
        } else if (below) {
          o.r.setAttribute("x", left); o.r.setAttribute("width", width);
          o.t.setAttribute("x", left + 3); o.t.textContent = fit(o.name, width);
          o.g.style.display = ""; o.g.style.opacity = 0.5;
        } else {
          o.g.style.display = "none";
        }
      }
    }
    function fit(name, w) {
      var room = Math.floor((w - 6) / 7);
      if (room < 3) return "";
      return name.length <= room ? name : name.substring(0, room - 2) + "..";
    }
    function search() {
      var term = prompt("Search for (a regular expression):", "");
      if (term === null) return;
      var re = new RegExp(term), hit = 0, total = +original[0].r.getAttribute("data-samples");
      var counted = [];
      for (var i = 0; i < original.length; i++) {
        var o = original[i];
        if (term !== "" && re.test(o.name)) {
          o.r.setAttribute("fill", "rgb(230,0,230)");
          var nested = false;
          for (var j = 0; j < counted.length; j++) {
            if (o.x >= counted[j].x && o.x + o.w <= counted[j].x + counted[j].w && o.y < counted[j].y) nested = true;
          }
          if (!nested) { counted.push(o); hit += +o.r.getAttribute("data-samples"); }
        } else {
          o.r.setAttribute("fill", o.fill);
        }
      }
      matched.textContent = term === "" ? "" : "Matched: " + (100 * hit / total).toFixed(1) + "%";
    }
    """
}
