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
# NVDA's controller client (LGPL-2.1): how Lumen speaks and brailles through NVDA (desktop/speech_output/windows.py).
# Downloaded here, at build time, from NV Access's pinned release and checked against its SHA-256 (never at run
# time); the spec puts the x64 DLL and its licence text in the bundle's resources\nvda, where windows.py looks.
$nvdaVersion = "2025.3.2"
$nvdaSha256 = "177fe3f2fa92911806939e41f961411ce6f851069b574d15529854f3ed6d1bf8"
$nvdaDir = "build\nvda-controller"
$nvdaZip = "$nvdaDir\nvda_${nvdaVersion}_controllerClient.zip"
New-Item -ItemType Directory -Force -Path $nvdaDir | Out-Null
if (-not (Test-Path $nvdaZip)) {
  Invoke-WebRequest -Uri "https://download.nvaccess.org/releases/$nvdaVersion/nvda_${nvdaVersion}_controllerClient.zip" -OutFile $nvdaZip
}
$got = (Get-FileHash $nvdaZip -Algorithm SHA256).Hash.ToLower()
if ($got -ne $nvdaSha256) { Remove-Item $nvdaZip; throw "NVDA controller client: SHA-256 $got, expected $nvdaSha256" }
Expand-Archive $nvdaZip -DestinationPath "$nvdaDir\zip" -Force
Copy-Item "$nvdaDir\zip\x64\nvdaControllerClient.dll" "$nvdaDir\nvdaControllerClient.dll" -Force
Copy-Item "$nvdaDir\zip\license.txt" "$nvdaDir\license.txt" -Force
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
