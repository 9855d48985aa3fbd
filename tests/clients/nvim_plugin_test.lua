-- The Neovim plugin against the real server, in headless Neovim (see test_nvim_plugin.py):
--   nvim --headless --clean -u NONE -c "luafile tests/clients/nvim_plugin_test.lua"
-- Environment: SPARKEDIT_NVIM_CMD (the server command, JSON), SPARKEDIT_NVIM_FILE (a
-- Python file in a scratch workspace), SPARKEDIT_NVIM_RESULTS (where the JSON results
-- go), SPARKEDIT_NVIM_PLUGIN (the plugin folder), SPARKEDIT_NVIM_SCREENSHOT (optional:
-- write a text picture of the ghost text there).
-- The model may be untrained: the checks are about mechanics, never about content.
local here = debug.getinfo(1, "S").source:sub(2):match("(.*/)") or "./"
local H = dofile(here .. "nvim_harness.lua")

vim.opt.rtp:prepend(vim.env.SPARKEDIT_NVIM_PLUGIN)
vim.cmd.runtime("plugin/sparkedit.lua")
H.capture_notifications()
H.record("SparkEditGhost")
H.record("SparkEditNextEdit")
H.record("SparkEditEdit")

local api = vim.api
local sparkedit = require("sparkedit")
local ghost_mod = require("sparkedit.ghost")
local next_edit_mod = require("sparkedit.next_edit")
local client_mod = require("sparkedit.client")

-- Lines (1-based) of examples/sample.py where a suggestion is likely: ends of statements.
local CANDIDATE_LINES = { 31, 37, 21, 45, 13, 51 }

local function lines(buf)
  return api.nvim_buf_get_lines(buf, 0, -1, false)
end

local function server_text(client, buf)
  local r = client:request_sync("sparkedit/documentText", { uri = vim.uri_from_bufnr(buf) },
    5000, buf)
  return r and r.result and r.result.text
end

local function in_sync(client, buf)
  -- The server's copy must be exactly the buffer (a final newline, as Neovim sends it).
  local server, mine = server_text(client, buf), table.concat(lines(buf), "\n") .. "\n"
  if server == mine then
    return true
  end
  return false, { server = server, buffer = mine }
end

local function stats(client, buf)
  local r = client:request_sync("sparkedit/status", vim.empty_dict(), 5000, buf)
  return r and r.result and r.result.stats or {}
end

-- The suggestion as the extmarks draw it (tabs expanded, control characters as ^X).
local function drawn(text)
  local out = {}
  for _, l in ipairs(vim.split(text, "\n", { plain = true })) do
    out[#out + 1] = ghost_mod.display(l)
  end
  return table.concat(out, "\n")
end

-- Text pictures of the window for the README, when SPARKEDIT_NVIM_SCREENSHOT names a file.
local pictures = {}
local function picture(buf, ns, row, before, after, header)
  local path = vim.env.SPARKEDIT_NVIM_SCREENSHOT
  if not path or path == "" then
    return
  end
  local last = math.min(row + after, api.nvim_buf_line_count(buf) - 1)
  pictures[#pictures + 1] = H.screenshot(buf, ns, math.max(0, row - before), last, header)
  local f = assert(io.open(path, "w"))
  f:write(table.concat(pictures, "\n"))
  f:close()
end

-- A next edit on lines 16-17 (`def subtotal` and its return): one edit inside a line,
-- one that adds a line.
local function made_up_edits(buf)
  local def, ret = unpack(api.nvim_buf_get_lines(buf, 15, 17, false))
  local s = assert(ret:find("self.price", 1, true)) - 1
  local function at(line, from, to)
    return { start = { line = line, character = from }, ["end"] = { line = line, character = to } }
  end
  return {
    { range = at(16, s, s + 10), newText = "self.unit_price" },
    { range = at(15, #def, #def), newText = '\n        """The line\'s price."""' },
  }
end

local function ghost_marks(buf)
  return #api.nvim_buf_get_extmarks(buf, ghost_mod.ns, 0, -1, {})
end

H.run(function()
  sparkedit.setup({
    cmd = vim.json.decode(vim.env.SPARKEDIT_NVIM_CMD),
    settings = { statsFile = "off" },
    auto_trigger = false, -- the checks trigger explicitly, then turn it on
    debounce_ms = 20,
  })
  vim.cmd.edit(vim.env.SPARKEDIT_NVIM_FILE)
  local buf = api.nvim_get_current_buf()
  H.check("filetype detected", vim.bo[buf].filetype == "python", vim.bo[buf].filetype)
  local client = H.attached(buf, client_mod)
  if not client then
    return
  end
  H.check("utf-8 positions negotiated", client.offset_encoding == "utf-8", client.offset_encoding)

  local model = vim.env.SPARKEDIT_NVIM_MODEL_NAME or "the model"
  if vim.env.SPARKEDIT_NVIM_SCREENSHOT and vim.env.SPARKEDIT_NVIM_SCREENSHOT ~= "" then
    -- Pictures for the README: a line cut short, ghost text asked for at its end.
    for _, demo in ipairs({ { 62, "    print(" }, { 39, "        gross = " } }) do
      local lnum, prefix = demo[1], demo[2]
      local original = api.nvim_buf_get_lines(buf, lnum - 1, lnum, false)[1]
      api.nvim_buf_set_lines(buf, lnum - 1, lnum, false, { prefix })
      H.insert_at_eol(lnum)
      local shown = H.next_event("SparkEditGhost", sparkedit.trigger, 30000)
      if shown and shown.shown then
        picture(buf, ghost_mod.ns, lnum - 1, 5, 2, ("sample.py, `%s` typed on line %d, ghost "
          .. "text from %s (^ in the line, + virtual lines):")
          :format(vim.trim(prefix), lnum, model))
      end
      H.to_normal()
      api.nvim_buf_set_lines(buf, lnum - 1, lnum, false, { original })
    end
  end

  -- Ghost text: trigger at the end of a few lines until the model suggests something.
  -- Each line ends in non-ASCII text: columns are bytes here and utf-8 on the wire.
  local ev, anchor
  for _, lnum in ipairs(CANDIDATE_LINES) do
    local text = api.nvim_buf_get_lines(buf, lnum - 1, lnum, false)[1]
    api.nvim_buf_set_lines(buf, lnum - 1, lnum, false, { text .. "  # café ☕ " })
    H.insert_at_eol(lnum)
    ev = H.next_event("SparkEditGhost", sparkedit.trigger, 30000)
    if ev and ev.shown then
      anchor = lnum
      break
    end
  end
  H.info("ghost_line", anchor)
  if not H.check("ghost text shown after trigger()", ev and ev.shown, ev) then
    return
  end
  local ghost = sparkedit.suggestion()
  local cursor = api.nvim_win_get_cursor(0)
  local text, marks = H.extmark_text(buf, ghost_mod.ns)
  H.info("ghost_text", ghost.text)
  H.check("one extmark at the cursor", #marks == 1 and marks[1][2] == cursor[1] - 1
    and marks[1][3] == cursor[2], { marks = marks, cursor = cursor })
  H.check("extmarks hold the suggestion", text == drawn(ev.text) and ev.text == ghost.text,
    { extmarks = text, item = ev.text })
  H.check("suggestion has an id", type(ghost.id) == "string", ghost.id)
  -- Typing the suggestion's next character keeps the rest on screen (no new request).
  local first = ghost.text:sub(1, 1)
  if #ghost.text >= 3 and first:match("^[%w%p ]$") then
    local before = ghost.text
    api.nvim_feedkeys(first, "nt", false)
    H.check("typing through keeps the rest", H.wait(function()
      local g = sparkedit.suggestion()
      return g and g.text == before:sub(2)
        and H.extmark_text(buf, ghost_mod.ns) == drawn(before:sub(2))
    end, 3000), { before = before, now = sparkedit.suggestion() })
  end

  -- Accept a word: inserted at the cursor, the rest stays shown.
  ghost = sparkedit.suggestion()
  if ghost and #ghost_mod.next_word(ghost.text) < #ghost.text then
    local word = ghost_mod.next_word(ghost.text)
    local expected = H.insert_text(lines(buf), ghost.row, ghost.col, word)
    local rest = ghost.text:sub(#word + 1)
    H.check("accept_word() acted", sparkedit.accept_word())
    H.check("accept_word() inserts the word", vim.deep_equal(lines(buf), expected),
      { word = word })
    local g = sparkedit.suggestion()
    H.check("the rest stays shown", g and g.text == rest
      and H.extmark_text(buf, ghost_mod.ns) == drawn(rest), { rest = rest, ghost = g })
  end

  -- Accept the rest with <Tab> (the mapping), as typed.
  ghost = sparkedit.suggestion()
  if H.check("a suggestion is left to accept", ghost ~= nil) then
    local expected = H.insert_text(lines(buf), ghost.row, ghost.col, ghost.text)
    local inserted = vim.split(ghost.text, "\n", { plain = true })
    local end_row = ghost.row + #inserted
    local end_col = (#inserted == 1 and ghost.col or 0) + #inserted[#inserted]
    H.type("<Tab>", function() return vim.deep_equal(lines(buf), expected) end)
    H.check("<Tab> inserts the suggestion at the cursor", vim.deep_equal(lines(buf), expected),
      { buffer = lines(buf), expected = expected })
    H.check("the cursor ends after it",
      vim.deep_equal(api.nvim_win_get_cursor(0), { end_row, end_col }),
      { cursor = api.nvim_win_get_cursor(0), expected = { end_row, end_col } })
    H.check("the extmarks are gone", ghost_marks(buf) == 0 and sparkedit.suggestion() == nil)
    H.check("the server's copy matches the buffer", in_sync(client, buf))
    local s = stats(client, buf)
    H.check("the server counted the suggestion shown and accepted",
      (s.shown or 0) >= 1 and (s.accepted or 0) >= 1, s)
  end

  -- A key with no suggestion shown does what it did before: <Tab> indents ('softtabstop').
  local row_text = api.nvim_get_current_line()
  H.type("<Tab>", function() return api.nvim_get_current_line() ~= row_text end)
  local now = api.nvim_get_current_line()
  H.check("<Tab> without ghost text inserts blanks", vim.startswith(now, row_text)
    and #now > #row_text and now:sub(#row_text + 1):match("^%s+$") ~= nil, now)
  api.nvim_set_current_line(row_text)
  api.nvim_win_set_cursor(0, { api.nvim_win_get_cursor(0)[1], #row_text })

  -- Dismiss: <C-]> clears and reports a reject.
  ev = H.next_event("SparkEditGhost", sparkedit.trigger, 30000)
  if ev and ev.shown then
    local rejected = stats(client, buf).rejected or 0
    H.type("<C-]>", function() return ghost_marks(buf) == 0 end)
    H.check("<C-]> dismisses the ghost text",
      ghost_marks(buf) == 0 and sparkedit.suggestion() == nil)
    H.check("the server counted the reject", H.wait(function()
      return (stats(client, buf).rejected or 0) > rejected
    end, 3000))
  else
    H.info("dismiss", "skipped: no suggestion at the second position")
  end

  -- Typing asks by itself once auto_trigger is on.
  require("sparkedit.config").options.auto_trigger = true
  ev = H.next_event("SparkEditGhost", function() api.nvim_feedkeys("x", "nt", false) end, 30000)
  H.check("typing triggers a request (auto_trigger)", ev ~= nil and ev.error == nil, ev)
  H.to_normal()
  H.check("leaving insert mode clears the ghost text", ghost_marks(buf) == 0)
  require("sparkedit.config").options.auto_trigger = false

  if vim.env.SPARKEDIT_NVIM_SCREENSHOT and vim.env.SPARKEDIT_NVIM_SCREENSHOT ~= "" then
    next_edit_mod.present(buf, client, { edits = made_up_edits(buf) },
      vim.lsp.util.buf_versions[buf])
    picture(buf, next_edit_mod.ns, 15, 2, 3, "sample.py, a next-edit preview (of an answer made "
      .. "up by the test; ~ replaced, ^ inserted, + added lines):")
    next_edit_mod.dismiss(buf)
  end

  -- Next edit: request at a few places; "no edit" must be said. An untrained model
  -- rarely proposes one, so the preview and accept also run on a made-up answer.
  local next_ev
  for _, lnum in ipairs({ 23, 39, 53 }) do
    api.nvim_win_set_cursor(0, { lnum, 4 })
    local since = #H.results.notifications
    next_ev = H.next_event("SparkEditNextEdit", function() vim.cmd("SparkEdit nextEdit") end, 30000)
    if not next_ev or next_ev.error or next_ev.count > 0 then
      break
    end
    H.check("no next edit is said", H.notified("no edit suggested", since) ~= nil)
  end
  H.check("sparkedit/nextEdit answered", next_ev ~= nil and next_ev.error == nil, next_ev)
  local edits, from_server = next_ev and next_ev.edits, true
  if not edits then
    edits = made_up_edits(buf)
    next_edit_mod.present(buf, client, { edits = edits }, vim.lsp.util.buf_versions[buf])
    from_server = false
  end
  H.info("next_edit", { from_server = from_server, edits = edits })
  local preview = api.nvim_buf_get_extmarks(buf, next_edit_mod.ns, 0, -1, { details = true })
  H.check("next edit previewed", next_edit_mod.get(buf) ~= nil and #preview > 0, preview)
  H.check("the preview maps <Tab> in the buffer",
    vim.fn.maparg("<Tab>", "n", false, true).buffer == 1)
  local expected = H.apply_edits(lines(buf), edits)
  H.type("<Tab>", function() return next_edit_mod.get(buf) == nil end)
  H.check("<Tab> applies the edits", vim.deep_equal(lines(buf), expected),
    { buffer = lines(buf), expected = expected })
  H.check("the preview is gone", #api.nvim_buf_get_extmarks(buf, next_edit_mod.ns, 0, -1, {}) == 0
    and vim.fn.maparg("<Tab>", "n") == "")
  H.check("the server's copy matches after the next edit", in_sync(client, buf))
  -- A preview goes away when the buffer changes under it.
  local top = { start = { line = 0, character = 0 }, ["end"] = { line = 0, character = 0 } }
  next_edit_mod.present(buf, client, { edits = { { range = top, newText = "# x\n" } } },
    vim.lsp.util.buf_versions[buf])
  api.nvim_buf_set_lines(buf, 1, 1, false, { "" })
  H.wait(function() return next_edit_mod.get(buf) == nil end, 2000)
  H.check("a change drops a stale preview", next_edit_mod.get(buf) == nil)
  H.check(":SparkEdit acceptEdit with nothing to accept says so", (function()
    local since = #H.results.notifications
    vim.cmd("SparkEdit acceptEdit")
    return H.notified("no next edit", since) ~= nil
  end)())

  -- Instruction edit on lines 16-17 (`subtotal`).
  local since = #H.results.notifications
  local edit_ev = H.next_event("SparkEditEdit", function()
    vim.cmd("16,17SparkEdit edit add a docstring")
  end, 30000)
  H.check(":SparkEdit edit answered", edit_ev ~= nil and edit_ev.error == nil, edit_ev)
  if edit_ev and edit_ev.applied then
    H.check("the server's copy matches after the edit", in_sync(client, buf))
  elseif edit_ev then
    H.check("the server says why there is no instruction edit",
      H.notified("sparkedit: n[oe]", since) ~= nil, H.results.notifications)
  end
  H.info("edit_applied", edit_ev and edit_ev.applied or false)

  -- A charwise visual selection narrows the range to its characters, in either encoding.
  H.to_normal()
  api.nvim_buf_set_lines(buf, 1, 2, false, { 'label = "é😀!"' })
  H.type("v<Esc>", function() return vim.fn.visualmode() == "v" end)
  api.nvim_buf_set_mark(buf, "<", 2, 9, {})
  api.nvim_buf_set_mark(buf, ">", 2, 11, {})
  local range8 = require("sparkedit.edit").command_range(buf, 2, 2, "utf-8")
  local range16 = require("sparkedit.edit").command_range(buf, 2, 2, "utf-16")
  local function chars(from, to)
    return { start = { line = 1, character = from }, ["end"] = { line = 1, character = to } }
  end
  H.check("a visual selection gives a character range",
    vim.deep_equal(range8, chars(9, 15)) and vim.deep_equal(range16, chars(9, 12)),
    { utf8 = range8, utf16 = range16 })
  H.check("a line range gives whole lines", vim.deep_equal(
    require("sparkedit.edit").command_range(buf, 3, 4, "utf-8"),
    { start = { line = 2, character = 0 }, ["end"] = { line = 4, character = 0 } }))

  -- :SparkEdit status
  since = #H.results.notifications
  vim.cmd("SparkEdit status")
  local status_msg
  H.wait(function()
    status_msg = H.notified("^sparkedit: ", since)
    return status_msg
  end, 5000)
  H.info("status", status_msg)
  H.check(":SparkEdit status prints the status", status_msg ~= nil
    and status_msg:find("sparkedit: ready", 1, true) ~= nil
    and status_msg:find("acceptance", 1, true) ~= nil, status_msg)

  -- sparkedit/didFocus: on entering an attached buffer (BufEnter), with the cursor, and
  -- for a buffer entered before its server attached (LspAttach).
  local focus_sent = {}
  local notify = client.notify
  client.notify = function(self, method, params)
    if method == "sparkedit/didFocus" then
      table.insert(focus_sent, params)
    end
    return notify(self, method, params)
  end
  local function server_focus()
    local r = client:request_sync("sparkedit/status", vim.empty_dict(), 5000, buf)
    return r and r.result and r.result.focus
  end
  local uri = vim.uri_from_bufnr(buf)
  H.check("the server knows the buffer in focus", H.wait(function()
    return server_focus() == uri
  end, 5000), server_focus())
  H.to_normal()
  local other_path = vim.fs.joinpath(vim.fs.dirname(vim.env.SPARKEDIT_NVIM_FILE), "other.py")
  vim.fn.writefile({ "def other():", "    return 1" }, other_path)
  vim.cmd.edit(other_path)
  local other_uri = vim.uri_from_fname(other_path)
  H.check("entering another file moves the server's focus", H.wait(function()
    return server_focus() == other_uri
  end, 20000), { sent = focus_sent, focus = server_focus() })
  vim.cmd.buffer(buf)
  api.nvim_win_set_cursor(0, { 17, 4 })
  local cursor = api.nvim_win_get_cursor(0)
  vim.cmd.doautocmd("BufEnter") -- as entering the buffer again with the cursor there
  local last = focus_sent[#focus_sent]
  H.check("BufEnter sends sparkedit/didFocus with the cursor", last ~= nil
    and last.textDocument.uri == uri and cursor[2] > 0
    and vim.deep_equal(last.position, { line = cursor[1] - 1, character = cursor[2] }),
    { sent = focus_sent, cursor = cursor })
  H.check("the server's focus follows it", H.wait(function()
    return server_focus() == uri
  end, 5000), server_focus())
  local count = #focus_sent
  vim.cmd.doautocmd("WinEnter")
  H.check("the same focus is sent once", #focus_sent == count, focus_sent)
  client.notify = nil -- back to the method

  -- :checkhealth sparkedit
  vim.cmd("checkhealth sparkedit")
  local report = api.nvim_buf_get_lines(0, 0, -1, false)
  H.info("health", report)
  local joined = table.concat(report, "\n")
  for _, expected in ipairs({ "OK Neovim 0.", "OK ghost text: extmarks", "OK server command found",
    "--help` runs", "OK server attached", "OK engine ready" }) do
    H.check("checkhealth: " .. expected, joined:find(expected, 1, true) ~= nil)
  end
  H.check("checkhealth: no errors", not joined:find("ERROR", 1, true))

  -- Stopping the server stops its engine too.
  local answer = client:request_sync("sparkedit/status", vim.empty_dict(), 5000, buf)
  local engine_pid = answer and answer.result and answer.result.enginePid
  H.check("the engine runs", type(engine_pid) == "number", engine_pid)
  H.check("Neovim waits for the server on exit", (client.flags.exit_timeout or 0) > 0)
  local id = client.id
  client:stop()
  H.check("the server exits", H.wait(function() return vim.lsp.get_client_by_id(id) == nil end,
    20000))
  H.check("its engine exits", type(engine_pid) == "number" and H.wait(function()
    return vim.uv.kill(engine_pid, 0) ~= 0
  end, 10000), engine_pid)
end, vim.env.SPARKEDIT_NVIM_RESULTS, tonumber(vim.env.SPARKEDIT_NVIM_TIMEOUT_MS or "90000"))
