# Build Lumen for Windows: a PyInstaller one-dir bundle with the CUDA build of torch, then the
# Inno Setup installer (Start-menu entry, optional autostart, uninstaller).
#   powershell -ExecutionPolicy Bypass -File installers\windows\build.ps1 [-Cuda cu126] [-Cpu]
# Needs: Python 3.11 (the "py" launcher), Inno Setup 6 (ISCC.exe), ~15 GB free disk.
param([string]$Cuda = "cu126", [switch]$Cpu)
$ErrorActionPreference = "Stop"
Set-Location (Join-Path $PSScriptRoot "..\..")
$venv = "build\venv-windows"
if (-not (Test-Path "$venv\Scripts\python.exe")) { py -3.11 -m venv $venv }
$py = "$venv\Scripts\python.exe"
& $py -m pip install --upgrade pip
# torch first, so nothing later pulls another build: CUDA wheels from the PyTorch index.
if ($Cpu) { & $py -m pip install torch --index-url https://download.pytorch.org/whl/cpu }
else { & $py -m pip install torch --index-url "https://download.pytorch.org/whl/$Cuda" }
# gpu: bitsandbytes + accelerate (4/8-bit); voice: faster-whisper, its model and sounddevice (PortAudio).
& $py -m pip install ".[gpu,voice,bundle]"
if ($LASTEXITCODE -ne 0) { throw "pip failed" }
& $py -c "import torch; print('torch', torch.__version__, 'cuda', torch.version.cuda)"
& $py -m PyInstaller --noconfirm --clean --distpath build\installers\windows\dist --workpath build\installers\windows\work installers\lumen.spec
if ($LASTEXITCODE -ne 0) { throw "PyInstaller failed" }
# The bundle must pass its own check before it is packaged (no model needed for these lines):
# every optional part imports, so a missing package fails the build, not the user.
$env:LUMEN_BUNDLE_GPU = if ($Cpu) { "0" } else { "1" }
& build\installers\windows\dist\lumen\lumen-cli.exe --bundle-self-test
if ($LASTEXITCODE -ne 0) { throw "the bundle lacks a part (see MISSING above)" }
& build\installers\windows\dist\lumen\lumen-cli.exe models list
if ($LASTEXITCODE -ne 0) { throw "the bundle does not start" }
$version = & $py -c "import tomllib; print(tomllib.load(open('pyproject.toml','rb'))['project']['version'])"
$iscc = Join-Path ${env:ProgramFiles(x86)} "Inno Setup 6\ISCC.exe"
& $iscc "/DAppVersion=$version" "/DSourceDir=$(Resolve-Path build\installers\windows\dist\lumen)" installers\windows\lumen.iss
if ($LASTEXITCODE -ne 0) { throw "Inno Setup failed" }
Write-Host "Installer: build\installers\windows\Output\"
