document.querySelectorAll('table.sortable').forEach(function(t){
  t.querySelectorAll('th').forEach(function(th,i){
    th.addEventListener('click',function(){
      var num=th.dataset.num==='1', asc=th.dataset.asc!=='1'; th.dataset.asc=asc?'1':'0';
      var rows=Array.prototype.slice.call(t.tBodies[0].rows);
      rows.sort(function(a,b){
        var x=a.cells[i], y=b.cells[i];
        if(num){var u=parseFloat(x.dataset.v), w=parseFloat(y.dataset.v);
          if(isNaN(u)) return 1; if(isNaN(w)) return -1; return asc?u-w:w-u;}
        return asc?x.textContent.localeCompare(y.textContent):y.textContent.localeCompare(x.textContent);
      });
      rows.forEach(function(r){t.tBodies[0].appendChild(r);});
    });
  });
});
