; Inno Setup 6 script for Lumen (built by installers\windows\build.ps1).
;   ISCC.exe /DAppVersion=0.1.0 /DSourceDir=C:\...\dist\lumen installers\windows\lumen.iss
; Per-user install by default (no administrator rights needed); Start-menu entry; optional desktop
; icon and "start when I sign in"; the installer's own pages are read by NVDA, JAWS and Narrator.
#ifndef AppVersion
  #define AppVersion "0.1.0"
#endif
#ifndef SourceDir
  #define SourceDir "..\..\build\installers\windows\dist\lumen"
#endif

[Setup]
AppId={{6C0E1C52-3F59-4E7B-9C1D-2B5A4D0C7A11}
AppName=Lumen
AppVersion={#AppVersion}
AppPublisher=Lumen contributors
AppComments=Describes your screen or a photo aloud, offline
DefaultDirName={autopf}\Lumen
DefaultGroupName=Lumen
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir=..\..\build\installers\windows\Output
OutputBaseFilename=Lumen-{#AppVersion}-windows-x64-setup
Compression=lzma2/max
SolidCompression=no
; The CUDA build of torch makes the bundle several GB: Inno requires disk spanning above 4.2 GB.
DiskSpanning=yes
DiskSliceSize=max
WizardStyle=modern
UninstallDisplayIcon={app}\lumen.exe
CloseApplications=yes

[Tasks]
Name: "desktopicon"; Description: "Create a desktop icon"; Flags: unchecked
Name: "autostart"; Description: "Start Lumen when I sign in"; Flags: unchecked

[Files]
Source: "{#SourceDir}\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\Lumen"; Filename: "{app}\lumen.exe"; Parameters: "--show"; Comment: "Describes your screen or a photo aloud"
Name: "{group}\Check Lumen setup"; Filename: "{cmd}"; Parameters: "/k ""{app}\lumen-cli.exe"" --check"; Comment: "Report GPU, model, speech and hotkey readiness"
Name: "{group}\Uninstall Lumen"; Filename: "{uninstallexe}"
Name: "{autodesktop}\Lumen"; Filename: "{app}\lumen.exe"; Parameters: "--show"; Tasks: desktopicon

[Registry]
Root: HKCU; Subkey: "Software\Microsoft\Windows\CurrentVersion\Run"; ValueType: string; ValueName: "Lumen"; ValueData: """{app}\lumen.exe"""; Flags: uninsdeletevalue; Tasks: autostart

[Run]
Filename: "{app}\lumen.exe"; Description: "Start Lumen now"; Flags: nowait postinstall skipifsilent
