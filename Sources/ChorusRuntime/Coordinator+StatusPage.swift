import ChorusWire
import Foundation
import SwiftProtobuf

extension Coordinator {
    /// What the status page shows, as one JSON object (`/api/status`): the cluster status, the partition map, the
    /// latest jobs and pipelines, and the latest brand-monitoring alerts. Messages are in protobuf's JSON mapping
    /// with the .proto field names, so the page reads the same names as `chorus cluster status --json`.
    public func statusPageJSON() async -> [UInt8] {
        var options = JSONEncodingOptions()
        options.preserveProtoFieldNames = true
        options.alwaysPrintInt64sAsNumbers = true
        func json(_ m: any SwiftProtobuf.Message) -> String { (try? m.jsonString(options: options)) ?? "{}" }
        let status = await self.status()
        let map = await state.mapWithNodes()
        let jobs = await state.list(limit: 15)
        let pipelines = (try? await state.pipelines(limit: 8)) ?? []
        let alerts = latestAlerts()
        let body = "{\"now_ms\":\(nowMs()),\"status\":\(json(status)),\"map\":\(json(map)),"
            + "\"jobs\":[\(jobs.map(json).joined(separator: ","))],"
            + "\"pipelines\":[\(pipelines.map(json).joined(separator: ","))],\"alerts\":\(alerts)}"
        return Array(body.utf8)
    }

    /// The latest brand-monitoring alerts, read at most every 10 s however many pages are open (the read scans
    /// every stored alert).
    func latestAlerts() -> String {
        let now = ContinuousClock.now
        if let cached = statusPageAlerts.withLock({ c in c.flatMap { now - $0.at < .seconds(10) ? $0.json : nil } }) {
            return cached
        }
        var q = Chorus_V1_SentimentQuery()
        q.what = "alerts"
        q.limit = 8
        let json = (try? sentimentQuery(q).json) ?? "[]"
        statusPageAlerts.withLock { $0 = (now, json) }
        return json
    }

    /// The status page: one self-contained HTML file (no external scripts, styles or fonts) that reads
    /// `/api/status` every second and redraws.
    public static let statusPageHTML: String = #"""
    <!doctype html>
    <html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
    <title>Chorus cluster</title>
    <style>
    :root{--bg:#f6f7f9;--card:#fff;--ink:#1d2330;--mute:#667085;--line:#e4e7ec;--ok:#12b76a;--warn:#f79009;--bad:#d92d20;--move:#2e90fa;--idle:#98a2b3}
    *{box-sizing:border-box}body{margin:0;font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;background:var(--bg);color:var(--ink)}
    header{display:flex;align-items:center;gap:16px;padding:14px 24px;background:#101828;color:#fff}
    header h1{font-size:18px;margin:0;font-weight:600}header .meta{color:#d0d5dd;font-size:13px}
    .badge{display:inline-block;padding:1px 8px;border-radius:10px;font-size:12px;font-weight:600;color:#fff;background:var(--idle)}
    .b-ok{background:var(--ok)}.b-warn{background:var(--warn)}.b-bad{background:var(--bad)}.b-move{background:var(--move)}
    main{padding:16px 24px;display:grid;grid-template-columns:repeat(auto-fit,minmax(420px,1fr));gap:16px}
    section{background:var(--card);border:1px solid var(--line);border-radius:8px;padding:14px 16px;overflow-x:auto}
    section.wide{grid-column:1/-1}h2{font-size:14px;margin:0 0 10px;text-transform:uppercase;letter-spacing:.04em;color:var(--mute)}
    .cards{display:flex;gap:12px;flex-wrap:wrap}.card{flex:1;min-width:120px;border:1px solid var(--line);border-radius:6px;padding:8px 12px}
    .card .n{font-size:24px;font-weight:600}.card .l{color:var(--mute);font-size:12px}
    table{width:100%;border-collapse:collapse}th,td{text-align:left;padding:5px 6px;border-bottom:1px solid var(--line);white-space:nowrap}
    th{color:var(--mute);font-weight:500;font-size:12px}td.num{text-align:right;font-variant-numeric:tabular-nums}
    .grid{display:grid;grid-template-columns:repeat(auto-fill,28px);gap:4px}
    .cell{width:28px;height:28px;border-radius:4px;font-size:10px;color:#fff;display:flex;align-items:center;justify-content:center;background:var(--ok)}
    .c-under{background:var(--warn)}.c-down{background:var(--bad)}.c-moving{background:var(--move)}.c-none{background:var(--idle)}
    .legend{display:flex;gap:14px;margin-top:10px;color:var(--mute);font-size:12px}.legend i{display:inline-block;width:10px;height:10px;border-radius:2px;margin-right:4px;vertical-align:-1px}
    .bar{height:8px;background:var(--line);border-radius:4px;overflow:hidden;width:70px}.bar>div{height:100%;background:var(--move)}
    .alerts div{padding:6px 8px;border-left:4px solid var(--warn);background:#fffaeb;margin-bottom:6px;border-radius:3px}
    .alerts div.bad{border-color:var(--bad);background:#fef3f2}.alerts div.info{border-color:var(--move);background:#eff8ff}
    .empty{color:var(--mute)}#err{display:none;background:var(--bad);color:#fff;padding:8px 24px}
    </style></head><body>
    <header><h1>Chorus cluster</h1><span id="health" class="badge">…</span><span class="meta" id="meta"></span></header>
    <div id="err"></div>
    <main>
    <section class="wide"><div class="cards" id="cards"></div></section>
    <section class="wide"><h2>Alerts</h2><div class="alerts" id="alerts"></div></section>
    <section class="wide"><h2>Nodes</h2><table id="nodes"></table></section>
    <section><h2>Partition map</h2><div class="grid" id="grid"></div>
    <div class="legend"><span><i style="background:var(--ok)"></i>R copies</span><span><i style="background:var(--move)"></i>copying</span>
    <span><i style="background:var(--warn)"></i>under-replicated</span><span><i style="background:var(--bad)"></i>no live primary</span></div></section>
    <section><h2>Moves in flight</h2><table id="moves"></table></section>
    <section><h2>Pipelines</h2><table id="pipelines"></table></section>
    <section class="wide"><h2>Jobs</h2><table id="jobs"></table></section>
    </main>
    <script>
    "use strict";
    const $=id=>document.getElementById(id);
    const esc=s=>String(s??"").replace(/[&<>"']/g,c=>({"&":"&amp;","<":"&lt;",">":"&gt;",'"':"&quot;","'":"&#39;"}[c]));
    const short=s=>String(s||"").replace(/^(NODE|JOB|PIPELINE|STORAGE)_STATE_/,"").toLowerCase();
    const bytes=n=>{n=Number(n||0);const u=["B","KiB","MiB","GiB","TiB"];let i=0;while(n>=1024&&i<4){n/=1024;i++}return (i?n.toFixed(1):n)+" "+u[i]};
    const secs=ms=>{const s=Math.max(0,Math.round(Number(ms||0)/1000));return s<120?s+" s":s<7200?Math.round(s/60)+" min":(s/3600).toFixed(1)+" h"};
    const stateClass=s=>({active:"b-ok",joining:"b-move",draining:"b-move",drained:"",suspect:"b-warn",dead:"b-bad",
      running:"b-move",queued:"",succeeded:"b-ok",failed:"b-bad",cancelled:"b-warn",ok:"b-ok",low:"b-warn",read_only:"b-bad"})[s]||"";
    const badge=s=>`<span class="badge ${stateClass(s)}">${esc(s)}</span>`;
    const bar=f=>`<div class="bar"><div style="width:${Math.round(100*Math.min(1,Math.max(0,f)))}%"></div></div>`;
    function table(el,head,rows,empty){el.innerHTML=rows.length?`<tr>${head.map(h=>`<th>${h}</th>`).join("")}</tr>`+rows.join(""):`<tr><td class="empty">${empty}</td></tr>`}
    function render(d){
      const s=d.status||{},nodes=s.nodes||[],moves=s.moves||[],under=new Set(s.under_replicated||[]);
      const byId={};(d.map.nodes||[]).concat(nodes).forEach(n=>byId[n.id]=n);
      const name=id=>esc((byId[id]||{}).name||id);
      const live=id=>{const n=nodes.find(x=>x.id===id);return n&&n.state!=="NODE_STATE_DEAD"};
      const count=st=>nodes.filter(n=>short(n.state)===st).length;
      const unavailable=Number(s.unassigned_partitions||0);
      const health=unavailable?["unavailable partitions","b-bad"]:under.size?["under-replicated","b-warn"]:moves.length?["moving","b-move"]:["healthy","b-ok"];
      $("health").className="badge "+health[1];$("health").textContent=health[0];
      $("meta").textContent=`map v${s.map_version||0} · ${s.partition_count||0} partitions · R=${s.replication_factor||0} · up ${secs(s.uptime_ms)} · updated ${new Date(d.now_ms).toLocaleTimeString()}`;
      const cards=[[nodes.length,"workers"],[count("active"),"active"],[count("draining")+count("joining"),"draining / joining"],[count("dead")+count("suspect"),"dead / suspect"],
        [under.size,"under-replicated"],[unavailable,"no live primary"],[moves.length+" / "+(s.moves_planned||0),"moves in flight / planned"],[s.jobs_running||0,"jobs queued or running"]];
      $("cards").innerHTML=cards.map(c=>`<div class="card"><div class="n">${esc(c[0])}</div><div class="l">${c[1]}</div></div>`).join("");
      const alerts=[];
      nodes.forEach(n=>{const st=short(n.state);
        if(st==="dead")alerts.push(["bad",`${esc(n.name)} is dead: its partitions failed over; start it again or replace it`]);
        if(st==="suspect")alerts.push(["",`${esc(n.name)} missed heartbeats (last ${secs(n.heartbeat_age_ms)} ago)`]);
        if(st==="draining")alerts.push(["info",`${esc(n.name)} is draining: ${Number(n.partitions||0)+Number(n.learners||0)} partition copies left`]);
        const ss=short((n.storage||{}).state||"STORAGE_STATE_OK");if(ss!=="ok")alerts.push([ss==="read_only"?"bad":"",`${esc(n.name)} storage ${esc(ss)} ${esc((n.storage||{}).reason||"")}`]);});
      if(unavailable)alerts.push(["bad",`${unavailable} partitions have no live primary: their reads, writes and tasks wait`]);
      if(under.size)alerts.push(["",`${under.size} partitions have fewer than R live copies`]);
      (d.alerts||[]).forEach(a=>alerts.push(["info",`brand alert ${esc(a.at)} · ${esc(a.kind)} · ${esc(a.key)} (${esc(a.count)} texts)`]));
      $("alerts").innerHTML=alerts.length?alerts.map(a=>`<div class="${a[0]}">${a[1]}</div>`).join(""):`<span class="empty">none</span>`;
      table($("nodes"),["name","state","primary","replica","copying","bytes","storage","heartbeat","tasks","address"],
        nodes.map(n=>`<tr><td>${esc(n.name)}</td><td>${badge(short(n.state))}</td><td class="num">${n.primaries||0}</td><td class="num">${n.replicas||0}</td>`
          +`<td class="num">${n.learners||0}</td><td class="num">${bytes(n.bytes_held)}</td><td>${badge(short((n.storage||{}).state||"STORAGE_STATE_OK"))}</td>`
          +`<td class="num">${secs(n.heartbeat_age_ms)}</td><td class="num">${n.running_tasks||0}</td><td>${esc(n.address)}</td></tr>`),"no workers registered");
      const moving=new Set(moves.map(m=>m.partition||0));
      $("grid").innerHTML=(d.map.assignments||[]).map((a,i)=>{const p=a.partition||0;
        const cls=!a.owner||!live(a.owner)?"c-down":under.has(p)?"c-under":(moving.has(p)||(a.learners||[]).length)?"c-moving":"";
        const tip=`partition ${p}: primary ${a.owner?name(a.owner):"none"}; replicas ${(a.replicas||[]).map(name).join(", ")||"none"}`+((a.learners||[]).length?`; copying to ${a.learners.map(name).join(", ")}`:"");
        return `<div class="cell ${cls}" title="${tip}">${p}</div>`}).join("");
      table($("moves"),["partition","from → to","reason","copied",""],moves.map(m=>{const tot=Number(m.bytes_total||0),done=Number(m.bytes_copied||0);
        return `<tr><td class="num">${m.partition||0}</td><td>${name(m.from)} → ${name(m.to)}</td><td>${esc(m.reason)}</td><td class="num">${bytes(done)}${tot?" / "+bytes(tot):""}</td><td>${bar(tot?done/tot:0)}</td></tr>`}),"no moves in flight");
      table($("jobs"),["job","kind","state","progress","","stage"],(d.jobs||[]).map(j=>`<tr><td>${esc(j.id)}</td><td>${esc(j.kind)}</td><td>${badge(short(j.state))}</td>`
        +`<td class="num">${Math.round(100*(j.progress||0))}%</td><td>${bar(j.progress||0)}</td><td>${esc(j.stage)}</td></tr>`),"no jobs yet");
      table($("pipelines"),["pipeline","state","steps"],(d.pipelines||[]).map(p=>{const steps=p.steps||[];const done=steps.filter(x=>short((x.job||{}).state)==="succeeded").length;
        return `<tr><td>${esc(p.name||p.id)}</td><td>${badge(short(p.state))}</td><td class="num">${done} / ${steps.length}</td></tr>`}),"no pipelines yet");
    }
    async function tick(){
      try{const r=await fetch("/api/status",{cache:"no-store"});if(!r.ok)throw new Error("HTTP "+r.status);render(await r.json());$("err").style.display="none"}
      catch(e){$("err").textContent="cannot reach the coordinator: "+e.message+" (retrying)";$("err").style.display="block"}
      setTimeout(tick,1000)}
    tick();
    </script></body></html>
    """#
}
