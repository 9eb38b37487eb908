"""The interactive results page, ``explore.html``, beside the static ``README.md`` and ``results.html``.

Like benchopt's plots, the page is drawn from data frames alone — the runs, the configurations' summaries and
the learning curves that ``bench compile`` gathered — never from the store or the runner. plotly.js is written
once per results folder (``plotly.min.js``) and the page loads it from beside itself, so it works offline and
pages do not each carry 5 MB of script.

What it shows, for the runs the filters (task, cell, depth, direction, truncation, truncation style) select:
every seed's test metric as a point with its configuration's mean and 95% interval (the tables' interval) and
the task's references within reach (floors, baselines: the static heatmap's anchors) as dashed lines;
a heatmap of the mean over cell × truncation; the learning curves (validation metric by step). Hovering a
point or curve shows the run's settings and a link to it in the MLflow UI (``make ui``'s address); clicking
opens it. The filters are kept in the address (``explore.html#cell=lstm&layers=2``), so a view can be shared.
Once drawn, the page's ``<body>`` carries what it drew (``data-points``, ``data-curves``, ``data-heatmap-cells``,
``data-configurations``) and ``data-drawn-ms``, the milliseconds from navigation start to the first full draw:
what the headless-browser tests read.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import pandas as pd

PAGE = "explore.html"
PLOTLY_JS = "plotly.min.js"
UI_ADDRESS = "http://127.0.0.1:5000"  # make ui
FILTERS = {"task": "task", "cell": "cell", "layers": "depth", "direction": "direction", "truncation": "truncation",
           "style": "truncation style"}
RUN_COLUMNS = [*FILTERS, "configuration", "seed", "outcome", "metric", "run_id", "url", "settings", "metric_label",
               "log_scale", "lower_is_better"]


def run_url(experiment_id: str, run_id: str) -> str:
    """A run's page in the MLflow UI that ``make ui`` serves.

    >>> run_url("1", "abc")
    'http://127.0.0.1:5000/#/experiments/1/runs/abc'
    """
    return f"{UI_ADDRESS}/#/experiments/{experiment_id}/runs/{run_id}"


def _json(frame: pd.DataFrame) -> str:
    """Records as JSON safe inside a <script> element (NaN as null)."""
    return frame.to_json(orient="records").replace("</", "<\\/")


def page(runs: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame, references: pd.DataFrame,
         title: str) -> str:
    """The page's HTML. ``runs``: one row per run with :data:`RUN_COLUMNS` (``metric`` NaN unless finished,
    ``url`` its MLflow UI page, ``settings`` its settings as text); ``summary``: one row per configuration with
    ``configuration``, ``mean``, ``low``, ``high``, ``n``; ``curves``: ``run_id``, ``step``, ``value``;
    ``references``: ``task``, ``reference`` (its name), ``value``, drawn beside the seeds."""
    by_run = json.dumps({run_id: [list(part["step"]), list(part["value"])]
                         for run_id, part in curves.groupby("run_id")}).replace("</", "<\\/")
    data = (f'{{"runs":{_json(runs[RUN_COLUMNS])},'
            f'"summary":{_json(summary[["configuration", "mean", "low", "high", "n"]])},'
            f'"curves":{by_run},"references":{_json(references[["task", "reference", "value"]])},'
            f'"filters":{json.dumps(FILTERS)}}}')
    return TEMPLATE.replace("__TITLE__", html.escape(title)).replace("__DATA__", data).replace(
        "__PLOTLY__", PLOTLY_JS)


def write(out_dir: Path, runs: pd.DataFrame, summary: pd.DataFrame, curves: pd.DataFrame, references: pd.DataFrame,
          title: str) -> list[Path]:
    """Write ``explore.html`` and, unless the folder holds it already, ``plotly.min.js``; return both paths."""
    from plotly.offline import get_plotlyjs  # plotly (~0.5 s): only when the page is written

    script = out_dir / PLOTLY_JS
    bundle = get_plotlyjs()
    if not script.is_file() or script.read_text(encoding="utf-8") != bundle:
        script.write_text(bundle, encoding="utf-8")
    (out_dir / PAGE).write_text(page(runs, summary, curves, references, title), encoding="utf-8")
    return [out_dir / PAGE, script]


TEMPLATE = r"""<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>__TITLE__</title>
<style>body{font-family:system-ui,sans-serif;margin:1em auto;max-width:1400px;padding:0 1em;color:#222}
#filters{display:flex;flex-wrap:wrap;gap:.6em 1.2em;align-items:end;margin:.5em 0}
#filters label{display:flex;flex-direction:column;font-size:13px}select{font-size:14px;min-width:7em}
.row{display:flex;flex-wrap:wrap}.half{flex:1 1 600px;min-width:0}#picked{font-size:14px;min-height:2.6em}
.note{font-size:13px;color:#555}</style>
<script src="__PLOTLY__"></script></head><body>
<h1>__TITLE__</h1>
<p class="note">Every point is one seed's test metric; the black bar is its configuration's mean with the 95%
interval over seeds (as in <a href="results.html">results.html</a>). Hover a point or curve for the run's
settings; click it to open the run in the MLflow UI (<code>make ui</code>). The filters are kept in the address.</p>
<div id="filters"></div>
<p id="picked"></p><p id="unfinished" class="note"></p>
<div id="points" style="height:460px"></div>
<div class="row"><div id="heatmap" class="half" style="height:440px"></div>
<div id="curves" class="half" style="height:440px"></div></div>
<script>
var DATA = __DATA__;
var sel = {};
function values(key){var seen={};DATA.runs.forEach(function(r){if(key==="task"||r.task===sel.task)seen[r[key]]=1});
  return Object.keys(seen).sort(function(a,b){var x=parseFloat(a),y=parseFloat(b);
    return isNaN(x)||isNaN(y)?a.localeCompare(b):x-y})}
function buildFilters(){var box=document.getElementById("filters");box.innerHTML="";
  Object.keys(DATA.filters).forEach(function(key){var label=document.createElement("label"),s=document.createElement("select");
    label.textContent=DATA.filters[key];s.id="f-"+key;var options=values(key);if(key!=="task")options.unshift("all");
    options.forEach(function(v){var o=document.createElement("option");o.value=o.textContent=v;s.appendChild(o)});
    if(options.indexOf(sel[key])<0)sel[key]=options[0];s.value=sel[key];
    s.addEventListener("change",function(){sel[key]=s.value;if(key==="task")buildFilters();save();draw()});
    label.appendChild(s);box.appendChild(label)})}
function save(){var parts=Object.keys(sel).filter(function(k){return sel[k]!=="all"}).map(function(k){
  return k+"="+encodeURIComponent(sel[k])});history.replaceState(null,"","#"+parts.join("&"))}
function load(){location.hash.replace(/^#/,"").split("&").forEach(function(p){var kv=p.split("=");
  if(kv[0]in DATA.filters)sel[kv[0]]=decodeURIComponent(kv[1]||"")})}
function shown(){return DATA.runs.filter(function(r){return Object.keys(DATA.filters).every(function(k){
  return sel[k]==="all"||String(r[k])===sel[k]})})}
function fmt(v){return v===null?"":(Math.abs(v)<1e-3?v.toExponential(3):v.toPrecision(4))}
function hover(r){return "<b>"+r.configuration+" seed "+r.seed+"</b><br>"+r.metric_label+" "+fmt(r.metric)+
  " ("+r.outcome+")<br>"+r.settings.replace(/ /g,"<br>")+"<br>"+r.url}
function pick(r){var p=document.getElementById("picked");p.innerHTML="";if(!r)return;
  p.appendChild(document.createTextNode("Run: "));var a=document.createElement("a");a.id="run-link";a.href=r.url;
  a.target="_blank";a.textContent=r.configuration+" seed "+r.seed;p.appendChild(a);
  p.appendChild(document.createTextNode(" — "+r.metric_label+" "+fmt(r.metric)+"; "+r.settings))}
function mean(xs,log){if(!xs.length)return null;var s=0;xs.forEach(function(x){s+=log?Math.log(x):x});
  s/=xs.length;return log?Math.exp(s):s}
var CONFIG={responsive:true,displaylogo:false,displayModeBar:"hover"};
function bind(id,runsOf){var el=document.getElementById(id);el.removeAllListeners&&el.removeAllListeners("plotly_hover");
  el.removeAllListeners&&el.removeAllListeners("plotly_click");
  el.on("plotly_hover",function(e){var r=runsOf(e.points[0]);if(r)pick(r)});
  el.on("plotly_click",function(e){var r=runsOf(e.points[0]);if(r){pick(r);window.open(r.url,"_blank")}})}
function draw(){var runs=shown(),done=runs.filter(function(r){return r.metric!==null});
  var log=runs.length?runs[0].log_scale:false,label=runs.length?runs[0].metric_label:"",
    better=runs.length?runs[0].lower_is_better:true;
  var configs=[];runs.forEach(function(r){if(configs.indexOf(r.configuration)<0)configs.push(r.configuration)});
  configs.sort();var seedsOf={};done.forEach(function(r){(seedsOf[r.configuration]=seedsOf[r.configuration]||[]).push(r)});
  var xs=[],ys=[],texts=[],ids=[];configs.forEach(function(c,i){var list=seedsOf[c]||[];list.forEach(function(r,j){
    xs.push(i+0.06+(list.length>1?j/(list.length-1)*0.22:0.11));ys.push(r.metric);texts.push(hover(r));ids.push(r)})});
  var sums=DATA.summary.filter(function(s){return configs.indexOf(s.configuration)>=0&&s.mean!==null});
  var means={type:"scatter",mode:"markers",name:"mean, 95% interval",x:sums.map(function(s){return configs.indexOf(s.configuration)-0.1}),
    y:sums.map(function(s){return s.mean}),marker:{symbol:"line-ew-open",size:22,color:"black",line:{width:2}},
    error_y:{type:"data",symmetric:false,color:"black",thickness:1.5,width:8,
      array:sums.map(function(s){return s.high===null?0:s.high-s.mean}),
      arrayminus:sums.map(function(s){return s.low===null?0:s.mean-s.low})},
    text:sums.map(function(s){return s.configuration+"<br>mean "+fmt(s.mean)+(s.low===null?"":" ["+fmt(s.low)+", "+fmt(s.high)+"]")+" n="+s.n}),
    hovertemplate:"%{text}<extra></extra>"};
  var points={type:"scatter",mode:"markers",name:"seeds",x:xs,y:ys,text:texts,hovertemplate:"%{text}<extra></extra>",
    marker:{size:8,color:"#1f77b4",opacity:0.75}};
  var lo=Math.min.apply(null,ys),hi=Math.max.apply(null,ys),span=hi-lo||Math.abs(hi)*0.1||1;
  var refs=DATA.references.filter(function(f){return f.task===sel.task&&f.value!==null&&(log?
    f.value>0&&f.value>lo/10&&f.value<hi*10:f.value>lo-span&&f.value<hi+span)}).map(function(f,k){
    return {type:"scatter",mode:"lines",name:f.reference+" "+fmt(f.value),x:[-0.5,configs.length-0.5],
      y:[f.value,f.value],line:{dash:"dash",width:1,color:["#d62728","#2ca02c","#9467bd","#8c564b","#7f7f7f"][k%5]},
      hovertemplate:f.reference+": "+fmt(f.value)+"<extra></extra>"}});
  Plotly.react("points",[means,points].concat(refs),{title:{x:0.01,xanchor:"left",text:label+" by configuration ("+done.length+" runs)"},margin:{b:140,t:40},
    xaxis:{tickvals:configs.map(function(c,i){return i}),ticktext:configs,tickangle:-40,automargin:true,
      range:[-0.5,configs.length-0.5],zeroline:false,showgrid:false},
    yaxis:{title:{text:label},type:log?"log":"linear"},legend:{orientation:"h",y:1.08},hovermode:"closest"},CONFIG);
  bind("points",function(p){return p.curveNumber===1?ids[p.pointIndex]:null});
  var cells=[],ts=[];done.forEach(function(r){if(cells.indexOf(r.cell)<0)cells.push(r.cell);
    if(ts.indexOf(r.truncation)<0)ts.push(r.truncation)});cells.sort();ts.sort(function(a,b){return a-b});
  var z=cells.map(function(c){return ts.map(function(t){return mean(done.filter(function(r){
    return r.cell===c&&r.truncation===t}).map(function(r){return r.metric}),log)})});
  Plotly.react("heatmap",[{type:"heatmap",x:ts.map(function(t){return "T="+t}),y:cells,z:z,colorscale:[[0,"#92c5de"],[0.5,"#f7f7f7"],[1,"#f4a582"]],
    reversescale:!better,texttemplate:"%{z:.4g}",hovertemplate:"%{y} %{x}: mean %{z:.4g}<extra></extra>",
    colorbar:{title:{text:label}}}],{title:{x:0.01,xanchor:"left",text:"mean "+label+" over the selected runs"+(log?" (geometric)":"")},
    margin:{t:40}},CONFIG);
  var palette=["#1f77b4","#ff7f0e","#2ca02c","#d62728","#9467bd","#8c564b","#e377c2","#7f7f7f","#bcbd22","#17becf"];
  var traces=[],curveRuns=[];done.forEach(function(r){var c=DATA.curves[r.run_id];if(!c)return;curveRuns.push(r);
    var first=!traces.some(function(t){return t.legendgroup===r.configuration});
    traces.push({type:"scatter",mode:"lines",x:c[0],y:c[1],name:r.configuration,legendgroup:r.configuration,
      showlegend:first,
      line:{width:1.2,color:palette[configs.indexOf(r.configuration)%palette.length]},
      text:c[0].map(function(){return hover(r)}),hovertemplate:"step %{x}: %{y:.4g}<br>%{text}<extra></extra>"})});
  Plotly.react("curves",traces,{title:{x:0.01,xanchor:"left",text:"learning curves on the validation set ("+traces.length+" runs)"},
    xaxis:{title:{text:"step"}},yaxis:{title:{text:label.replace(/^test /,"validation ")},type:log?"log":"linear"},margin:{t:40},hovermode:"closest",
    legend:{font:{size:10}}},CONFIG);
  bind("curves",function(p){return curveRuns[p.curveNumber]});
  var left=runs.length-done.length;document.getElementById("unfinished").textContent=left?left+
    " selected runs without a result (diverged, failed or missing) are not drawn.":"";
  pick(ids[0]);
  document.body.dataset.points=ys.length;document.body.dataset.curves=traces.length;
  document.body.dataset.heatmapCells=cells.length*ts.length;document.body.dataset.configurations=configs.length;
  if(!document.body.dataset.drawnMs)document.body.dataset.drawnMs=Math.round(performance.now())}
load();buildFilters();save();draw();
</script></body></html>
"""
